# affinity_cc_library(NAME SRCS ... DEPS ...): one small static library per concept.
# The DEPS lists make the allowed dependency directions between domains visible.
function(affinity_cc_library)
  cmake_parse_arguments(A "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(affinity_${A_NAME} STATIC ${A_SRCS})
  add_library(affinity::${A_NAME} ALIAS affinity_${A_NAME})
  target_include_directories(affinity_${A_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(affinity_${A_NAME} PUBLIC ${A_DEPS})
endfunction()

# affinity_cc_test(NAME SRCS ... DEPS ... [LABELS ...]): a GoogleTest binary registered with CTest.
function(affinity_cc_test)
  cmake_parse_arguments(A "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${A_NAME} ${A_SRCS})
  target_include_directories(${A_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${A_NAME}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    PROPERTIES LABELS "${A_LABELS}" ENVIRONMENT "AFFINITY_BIN=$<TARGET_FILE:affinity>;AFFINITY_SHARED_DATA=${PROJECT_SOURCE_DIR}/../shared/data"
    DISCOVERY_TIMEOUT 60)
endfunction()

# affinity_cc_benchmark(NAME SRCS ... DEPS ...): a Google Benchmark binary (run by `make bench`).
function(affinity_cc_benchmark)
  cmake_parse_arguments(A "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${A_NAME} ${A_SRCS})
  target_include_directories(${A_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} benchmark::benchmark)
endfunction()
