# Sanitizer and fuzzer builds: make check-asan, make check-tsan, make fuzz.
#
#   -DAETHER_SANITIZE=address  ASan + UBSan (+ LeakSanitizer) on everything,
#                              plugins included (they link the shared runtime)
#   -DAETHER_SANITIZE=thread   TSan on everything
#   -DAETHER_FUZZ=ON           the libFuzzer targets in tests/fuzz (clang only)
#
# Tests get the runtime options (suppression files in tests/sanitizers) through
# AETHER_SANITIZER_TEST_PROPERTIES; processes they start inherit them. Every
# report, also from a host a test started (whose output goes to a log file),
# is written to <build>/sanitizer-logs/: make check-asan/check-tsan fail when
# that directory is not empty after the suite.
set(AETHER_SANITIZE "" CACHE STRING "Sanitizers: address (ASan+UBSan), thread (TSan) or empty")
set_property(CACHE AETHER_SANITIZE PROPERTY STRINGS "" address thread)
option(AETHER_FUZZ "Build the libFuzzer targets in tests/fuzz (needs clang)" OFF)

set(aether_supp ${PROJECT_SOURCE_DIR}/tests/sanitizers/)
set(AETHER_SANITIZER_TEST_PROPERTIES "")
set(aether_report log_path=${CMAKE_BINARY_DIR}/sanitizer-logs/report)
if(AETHER_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "AETHER_FUZZ needs clang (cmake -DCMAKE_CXX_COMPILER=clang++)")
  endif()
  # Everything instrumented for coverage and checked by ASan + UBSan; the
  # fuzz executables link libFuzzer (tests/fuzz/CMakeLists.txt).
  set(aether_san_flags -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
elseif(AETHER_SANITIZE STREQUAL "address")
  set(aether_san_flags -fsanitize=address,undefined -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  # gtest_discover_tests flattens list-valued properties, so each property
  # carries one variable: ASan's own defaults (leak detection on) need none.
  set(AETHER_SANITIZER_TEST_PROPERTIES
    ENVIRONMENT "LSAN_OPTIONS=suppressions=${aether_supp}lsan.supp:print_suppressions=0:${aether_report}"
    ENVIRONMENT_MODIFICATION
      "UBSAN_OPTIONS=set:print_stacktrace=1:halt_on_error=1:suppressions=${aether_supp}ubsan.supp")
elseif(AETHER_SANITIZE STREQUAL "thread")
  set(aether_san_flags -fsanitize=thread)
  set(AETHER_SANITIZER_TEST_PROPERTIES
    ENVIRONMENT "TSAN_OPTIONS=suppressions=${aether_supp}tsan.supp:second_deadlock_stack=1:history_size=4:${aether_report}")
elseif(NOT AETHER_SANITIZE STREQUAL "")
  message(FATAL_ERROR "AETHER_SANITIZE must be address, thread or empty, not '${AETHER_SANITIZE}'")
endif()
if(AETHER_SANITIZE)
  # -O1 and line tables: usable stack traces, a faster build, and still a
  # suite that runs in reasonable time.
  add_compile_options(-O1 -g1)
endif()
if(aether_san_flags)
  add_compile_options(${aether_san_flags})
  add_link_options(${aether_san_flags})
endif()

# Sets the sanitizer environment on tests added with add_test in the calling
# directory (gtest_discover_tests takes AETHER_SANITIZER_TEST_PROPERTIES).
function(aether_sanitizer_env_for_tests)
  get_property(tests DIRECTORY PROPERTY TESTS)
  if(tests AND AETHER_SANITIZER_TEST_PROPERTIES)
    set_tests_properties(${tests} PROPERTIES ${AETHER_SANITIZER_TEST_PROPERTIES})
  endif()
endfunction()
