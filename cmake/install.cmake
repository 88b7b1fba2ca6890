# Install components and packages (docs/operations.md, docs/testing.md):
#   sdk      headers, the CMake package AetherSDK, aether_add_plugin()
#            (rules in sdk/CMakeLists.txt)
#   testkit  libaethertestkit, aether/testkit.hpp, AetherSDK::testkit
#   host     aether-host, aether, the example plugins, the default config,
#            the systemd unit
include(GNUInstallDirs)
set(AETHER_SDK_CMAKE_DIR lib/cmake/AetherSDK)

# --- testkit -------------------------------------------------------------------
install(TARGETS aether_testkit_lib EXPORT AetherSDKTestkitTargets
  LIBRARY DESTINATION lib COMPONENT testkit NAMELINK_COMPONENT testkit)
install(FILES host/testkit/include/aether/testkit.hpp DESTINATION include/aether
  COMPONENT testkit)
install(EXPORT AetherSDKTestkitTargets NAMESPACE AetherSDK::
  DESTINATION ${AETHER_SDK_CMAKE_DIR} COMPONENT testkit)

# --- host ----------------------------------------------------------------------
# Configuration goes to /etc when the prefix is /usr (the .deb), else under
# the prefix, decided at install time so that one build serves both.
install(CODE [[
  if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(AETHER_INSTALL_ETC "etc")
  else()
    string(REGEX REPLACE "^/+" "" AETHER_INSTALL_ETC "${CMAKE_INSTALL_PREFIX}/etc")
  endif()
]] COMPONENT host)
install(TARGETS aether-host aether RUNTIME DESTINATION bin COMPONENT host)
install(TARGETS bank order counter LIBRARY DESTINATION lib/aether/plugins COMPONENT host)
# The default config with the installed layout's defaults: data in
# /var/lib/aether, plugins from /usr/lib/aether/plugins.
file(READ ${PROJECT_SOURCE_DIR}/config/aether.yaml _aether_config)
string(REPLACE "\${AETHER_DATA:-./data}" "\${AETHER_DATA:-/var/lib/aether}"
  _aether_config "${_aether_config}")
string(REPLACE "\${AETHER_PLUGIN_DIR:-build/plugins}"
  "\${AETHER_PLUGIN_DIR:-/usr/lib/aether/plugins}" _aether_config "${_aether_config}")
file(WRITE ${PROJECT_BINARY_DIR}/packaging/aether.yaml "${_aether_config}")
install(FILES ${PROJECT_BINARY_DIR}/packaging/aether.yaml
  DESTINATION "/\${AETHER_INSTALL_ETC}/aether" COMPONENT host)
install(FILES packaging/aether.service DESTINATION lib/systemd/system COMPONENT host)
install(FILES docs/operations.md docs/configuration.md DESTINATION share/doc/aether
  COMPONENT host)
