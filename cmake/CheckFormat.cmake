# Fails when a C++ or GLSL source file differs from its clang-format rendering (.clang-format).
# GLSL is formatted as C++ (clang-format has no GLSL mode; the two are close enough).
file(GLOB_RECURSE sources RELATIVE ${SOURCE_DIR}
     ${SOURCE_DIR}/runtime/*.cpp ${SOURCE_DIR}/runtime/*.hpp ${SOURCE_DIR}/compiler/*.cpp
     ${SOURCE_DIR}/compiler/*.hpp ${SOURCE_DIR}/conformance/*.cpp ${SOURCE_DIR}/conformance/*.hpp
     ${SOURCE_DIR}/cli/*.cpp ${SOURCE_DIR}/tests/*.cpp
     ${SOURCE_DIR}/tests/*.hpp ${SOURCE_DIR}/benchmarks/*.cpp ${SOURCE_DIR}/kernels/*.h
     ${SOURCE_DIR}/kernels/*.comp ${SOURCE_DIR}/kernels/*.glsl ${SOURCE_DIR}/tests/*.comp
     ${SOURCE_DIR}/cmake/*.comp)
set(unformatted "")
foreach(source ${sources})
  set(assume "")
  if(source MATCHES "\\.(comp|glsl)$")
    set(assume --assume-filename=${SOURCE_DIR}/${source}.cpp)
  endif()
  execute_process(COMMAND ${CLANG_FORMAT} --style=file:${SOURCE_DIR}/.clang-format ${assume}
                          ${SOURCE_DIR}/${source}
                  OUTPUT_VARIABLE formatted RESULT_VARIABLE status)
  file(READ ${SOURCE_DIR}/${source} original)
  if(NOT status EQUAL 0 OR NOT formatted STREQUAL original)
    list(APPEND unformatted ${source})
  endif()
endforeach()
list(LENGTH sources count)
if(unformatted)
  list(JOIN unformatted "\n  " listing)
  message(FATAL_ERROR "not clang-formatted (run clang-format -i):\n  ${listing}")
endif()
message(STATUS "${count} files are clang-formatted")
