# Install components and packages (docs/operations.md, docs/testing.md):
#   sdk      headers, the CMake package AetherSDK, aether_add_plugin()
#            (rules in sdk/CMakeLists.txt)
#   testkit  libaethertestkit, aether/testkit.hpp, AetherSDK::testkit
#   host     aether-host, aether, the example plugins, the default config,
#            the systemd unit
# `make package` (CPack) builds two .deb files from them: aether (host) and
# aether-dev (sdk, testkit).
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

# --- packages --------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME aether)
set(CPACK_PACKAGE_VENDOR "aether")
set(CPACK_PACKAGE_CONTACT "aether maintainers <aether@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Runtime for event-sourced actors with hot-swappable plugins")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL host sdk testkit)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION misc)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_HOST_PACKAGE_NAME aether)
set(CPACK_DEBIAN_HOST_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_HOST_PACKAGE_RECOMMENDS "nats-server")
set(CPACK_DEBIAN_HOST_PACKAGE_CONTROL_EXTRA
  "${PROJECT_SOURCE_DIR}/packaging/postinst;${PROJECT_SOURCE_DIR}/packaging/prerm;${PROJECT_SOURCE_DIR}/packaging/postrm;${PROJECT_SOURCE_DIR}/packaging/conffiles")
set(CPACK_DEBIAN_HOST_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENT_HOST_DESCRIPTION "aether-host, the aether CLI, example plugins and a systemd unit")
# sdk and testkit are one package, aether-dev.
set(CPACK_COMPONENT_SDK_GROUP dev)
set(CPACK_COMPONENT_TESTKIT_GROUP dev)
set(CPACK_COMPONENT_GROUP_DEV_DESCRIPTION
  "The aether plugin SDK (headers, CMake package AetherSDK) and the testkit")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME aether-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "nlohmann-json3-dev (>= 3.2), cmake (>= 3.20)")
include(CPack)
