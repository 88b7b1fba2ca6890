# aether_add_plugin(NAME [SOURCES] src...)
#
# Builds an aether plugin as a loadable module:
#   - hidden visibility and a linker version script: aether_plugin_entry is
#     the one symbol the image exports (inline and template code of the
#     standard library and nlohmann_json stays inside it),
#   - Release flags (CMAKE_<LANG>_FLAGS_RELEASE) when the project sets no
#     build type, so a plugin is never built at -O0 by accident,
#   - -fno-gnu-unique on GCC, so the image really unloads after a hot swap,
#   - linked against the aether SDK headers (abi.h, sdk.hpp, nlohmann_json),
#   - written to ${AETHER_PLUGIN_OUTPUT_DIR} (default: <build>/plugins) as
#     NAME.so.
include_guard(GLOBAL)

function(aether_add_plugin name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR" "SOURCES" ${ARGN})
  set(sources ${ARG_SOURCES} ${ARG_UNPARSED_ARGUMENTS})
  if(NOT sources)
    message(FATAL_ERROR "aether_add_plugin(${name}): no SOURCES given")
  endif()
  if(ARG_OUTPUT_DIR)
    set(out_dir "${ARG_OUTPUT_DIR}")
  elseif(AETHER_PLUGIN_OUTPUT_DIR)
    set(out_dir "${AETHER_PLUGIN_OUTPUT_DIR}")
  else()
    set(out_dir "${CMAKE_BINARY_DIR}/plugins")
  endif()

  add_library(${name} MODULE ${sources})
  target_link_libraries(${name} PRIVATE AetherSDK::sdk)
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    SUFFIX ".so"
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON
    LIBRARY_OUTPUT_DIRECTORY "${out_dir}")
  target_compile_options(${name} PRIVATE
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-fno-gnu-unique>
    $<$<AND:$<COMPILE_LANGUAGE:C>,$<C_COMPILER_ID:GNU>>:-fno-gnu-unique>)
  # Everything the plugin needs must be resolved inside it or its own
  # dependencies, never in the host.
  if(NOT APPLE)
    target_link_options(${name} PRIVATE -Wl,--no-undefined)
    _aether_plugin_exports(${name})
  endif()
  _aether_plugin_release_default(${name})
endfunction()

# Exports aether_plugin_entry alone, whatever the sources' visibility says.
function(_aether_plugin_exports name)
  set(map "${CMAKE_BINARY_DIR}/aether_plugin_exports.map")
  file(CONFIGURE OUTPUT "${map}"
    CONTENT "{\n  global: aether_plugin_entry;\n  local: *;\n};\n")
  target_link_options(${name} PRIVATE "-Wl,--version-script=${map}")
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS "${map}")
endfunction()

# The Release flags of each language, when the project chose no build type
# (single-configuration generators; multi-configuration ones always have one).
function(_aether_plugin_release_default name)
  get_property(multi GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
  if(multi OR CMAKE_BUILD_TYPE)
    return()
  endif()
  get_property(languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  foreach(lang IN ITEMS C CXX)
    if(lang IN_LIST languages)
      separate_arguments(flags NATIVE_COMMAND "${CMAKE_${lang}_FLAGS_RELEASE}")
      target_compile_options(${name} PRIVATE "$<$<COMPILE_LANGUAGE:${lang}>:${flags}>")
    endif()
  endforeach()
endfunction()
