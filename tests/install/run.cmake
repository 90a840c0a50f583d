# Installs the build tree into a fresh prefix, then builds tests/install/ against it twice: with
# find_package(pxvm) and with pkg-config, and runs both, and every example of docs/API.md.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK=... -P run.cmake
file(REMOVE_RECURSE ${WORK})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK}/prefix
                OUTPUT_QUIET RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed")
endif()
foreach(file lib/libpxvm.a lib/cmake/pxvm/pxvmConfig.cmake lib/pkgconfig/pxvm.pc bin/pxrun
             include/pxvm/vulkan/runtime.hpp include/pxvm_layout.h)
  if(NOT EXISTS ${WORK}/prefix/${file})
    message(FATAL_ERROR "not installed: ${file}")
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/install -B ${WORK}/build
                        -DCMAKE_PREFIX_PATH=${WORK}/prefix -DCMAKE_BUILD_TYPE=Release
                        -DPXVM_API_DOC=${SOURCE_DIR}/docs/API.md
                        -DCMAKE_CXX_COMPILER=${CXX_COMPILER} "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
                        "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}"
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the outside project with find_package(pxvm) failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK}/build RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the outside project failed")
endif()
execute_process(COMMAND ${WORK}/build/consumer ${SOURCE_DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the outside project's program failed")
endif()
# docs/API.md's examples, each run as a program of its own.
file(READ ${WORK}/build/examples.txt examples)
foreach(example IN LISTS examples)
  execute_process(COMMAND ${WORK}/build/${example} ${SOURCE_DIR} RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message(STATUS "${example}: ${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "docs/API.md's ${example} failed (exit ${rc}): ${out}")
  endif()
endforeach()
# pkg-config, as a Makefile would use it
find_program(PKG_CONFIG pkg-config REQUIRED)
set(CXX ${CXX_COMPILER})
set(ENV{PKG_CONFIG_PATH} ${WORK}/prefix/lib/pkgconfig)
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs pxvm OUTPUT_VARIABLE flags
                OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config --cflags --libs pxvm failed")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
separate_arguments(extra UNIX_COMMAND "${CXX_FLAGS} ${LINKER_FLAGS}")
execute_process(COMMAND ${CXX} -std=c++20 ${extra} ${SOURCE_DIR}/tests/install/main.cpp ${flags}
                        -o ${WORK}/consumer-pc RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building with pkg-config's flags failed")
endif()
execute_process(COMMAND ${WORK}/consumer-pc ${SOURCE_DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the pkg-config build's program failed")
endif()
