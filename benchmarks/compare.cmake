# pxvm_bench_compare: `pxbench compare`'s table and SVG chart (compare.hpp, svg_chart.hpp) as a
# library, for pxbench and the unit tests; include()d from benchmarks/CMakeLists.txt.
add_library(pxvm_bench_compare STATIC ${CMAKE_CURRENT_LIST_DIR}/compare.cpp
                                      ${CMAKE_CURRENT_LIST_DIR}/svg_chart.cpp)
# runtime/src for untrusted_json.hpp: compare's inputs are parsed with its depth limit.
target_include_directories(pxvm_bench_compare PUBLIC ${CMAKE_CURRENT_LIST_DIR}
                                              PRIVATE ${PROJECT_SOURCE_DIR}/runtime/src)
target_link_libraries(pxvm_bench_compare PUBLIC pxvm
                      PRIVATE nlohmann_json::nlohmann_json pxvm_warnings)
