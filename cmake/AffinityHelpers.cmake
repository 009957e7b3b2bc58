# affinity_include_folder(TARGET SCOPE FOLDER): TARGET sees "FOLDER/file.h" for the headers of
# src/FOLDER (and its subfolders) and no other folder of src/. The include root is a folder of the
# build tree, include/FOLDER, holding one symbolic link, FOLDER -> src/FOLDER.
function(affinity_include_folder target scope folder)
  set(root ${PROJECT_BINARY_DIR}/include/${folder})
  file(MAKE_DIRECTORY ${root})
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${folder} ${root}/${folder} SYMBOLIC RESULT linked)
  if(NOT linked STREQUAL "0")
    message(FATAL_ERROR "cannot link ${root}/${folder} to src/${folder}: ${linked}")
  endif()
  target_include_directories(${target} ${scope} ${root})
endfunction()

# affinity_cc_library(NAME SRCS ... DEPS ...): one small static library per concept, the folder
# src/NAME. The DEPS lists make the allowed dependency directions between domains visible, and
# enforce them: a library exports only its own folder's headers, so a folder sees the headers of
# the libraries its DEPS reach and no others (tests/structure/check_structure.py checks the same).
function(affinity_cc_library)
  cmake_parse_arguments(A "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(affinity_${A_NAME} STATIC ${A_SRCS})
  add_library(affinity::${A_NAME} ALIAS affinity_${A_NAME})
  affinity_include_folder(affinity_${A_NAME} PUBLIC ${A_NAME})
  target_link_libraries(affinity_${A_NAME} PUBLIC ${A_DEPS})
endfunction()

# affinity_cc_test(NAME SRCS ... DEPS ... [LABELS ...]): a GoogleTest binary registered with CTest.
# A test sees all of src/ and tests/: it links what it tests.
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
