# aether_add_plugin(NAME [SOURCES] src...)
#
# Builds an aether plugin as a loadable module:
#   - hidden visibility (only aether_plugin_entry is exported),
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
  endif()
endfunction()
