# Helpers shared by every CMakeLists.txt of the project.

# Warnings for code we own. Generated protobuf code does not get them.
function(praefect_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wnon-virtual-dtor)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Wshadow=local)
  endif()
  if(PRAEFECT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# praefect_library(<module> SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
# Declares the static library praefect_<module>. Headers are included as
# "<module>/<file>.h" from src/.
function(praefect_library module)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target praefect_${module})
  add_library(${target} STATIC ${ARG_SOURCES})
  target_include_directories(${target} PUBLIC "${PROJECT_SOURCE_DIR}/src")
  target_link_libraries(${target} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  praefect_warnings(${target})
endfunction()

# praefect_unit_test(<module> <name> [LIBS ...])
# Builds tests/unit/<module>/<name>.cc as one cmocka executable and registers
# it with ctest as unit/<module>/<name>.
function(praefect_unit_test module name)
  cmake_parse_arguments(ARG "" "" "LIBS;ENV" ${ARGN})
  set(target test_${module}_${name})
  add_executable(${target} ${name}.cc)
  set_target_properties(${target} PROPERTIES
    RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests/unit/${module}"
    OUTPUT_NAME ${name})
  target_include_directories(${target} PRIVATE "${PROJECT_SOURCE_DIR}/tests/unit")
  target_link_libraries(${target} PRIVATE ${ARG_LIBS} PkgConfig::CMOCKA)
  target_compile_definitions(${target} PRIVATE
    PRAEFECT_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    PRAEFECT_TESTDATA_DIR="${CMAKE_CURRENT_SOURCE_DIR}/testdata")
  praefect_warnings(${target})
  add_test(NAME unit/${module}/${name} COMMAND ${target})
  set_tests_properties(unit/${module}/${name} PROPERTIES LABELS unit TIMEOUT 120)
  if(ARG_ENV)
    set_tests_properties(unit/${module}/${name} PROPERTIES ENVIRONMENT "${ARG_ENV}")
  endif()
endfunction()

# praefect_fuzzer(<name> SOURCE <file> LIBS ... CORPUS <dir>)
# With PRAEFECT_FUZZ=ON: a libFuzzer binary in bin/fuzz/, and a ctest entry
# fuzz/<name> that runs it for PRAEFECT_FUZZ_SECONDS over the seed corpus.
# Without it: the same source is linked against a small driver that replays
# the seed corpus, so every seed is checked by the ordinary test run.
set(PRAEFECT_FUZZ_SECONDS 60 CACHE STRING "Seconds each fuzz target runs under ctest")
function(praefect_fuzzer name)
  cmake_parse_arguments(ARG "" "SOURCE;CORPUS" "LIBS" ${ARGN})
  set(target fuzz_${name})
  if(PRAEFECT_FUZZ)
    add_executable(${target} ${ARG_SOURCE})
    target_link_options(${target} PRIVATE -fsanitize=fuzzer)
    set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/bin/fuzz")
    target_link_libraries(${target} PRIVATE ${ARG_LIBS})
    praefect_warnings(${target})
    add_test(NAME fuzz/${name}
      COMMAND ${target} -max_total_time=${PRAEFECT_FUZZ_SECONDS} -print_final_stats=1
              "${PROJECT_BINARY_DIR}/fuzz-corpus/${name}" "${ARG_CORPUS}")
    file(MAKE_DIRECTORY "${PROJECT_BINARY_DIR}/fuzz-corpus/${name}")
    set_tests_properties(fuzz/${name} PROPERTIES LABELS fuzz TIMEOUT 600)
  else()
    add_executable(${target} ${ARG_SOURCE} "${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.cc")
    set_target_properties(${target} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests/fuzz")
    target_link_libraries(${target} PRIVATE ${ARG_LIBS})
    praefect_warnings(${target})
    add_test(NAME fuzz-corpus/${name} COMMAND ${target} "${ARG_CORPUS}")
    set_tests_properties(fuzz-corpus/${name} PROPERTIES LABELS unit TIMEOUT 120)
  endif()
endfunction()
