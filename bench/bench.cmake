# Benchmarks: built with the project, never run by ctest (speed lives here, not in tests).
add_library(bench_common STATIC ${CMAKE_SOURCE_DIR}/bench/bench_common.c)
target_link_libraries(bench_common PUBLIC tb)
foreach(b bench_agreement bench_runner bench_sessions bench_stopping)
  if(EXISTS ${CMAKE_SOURCE_DIR}/bench/${b}.c)
    add_executable(${b} ${CMAKE_SOURCE_DIR}/bench/${b}.c)
    target_link_libraries(${b} PRIVATE bench_common)
    target_compile_definitions(${b} PRIVATE TB_BINARY="$<TARGET_FILE:testbench>"
                                            TB_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
    add_dependencies(${b} testbench)
  endif()
endforeach()
# gt_server: the ground-truth SSE server bench_runner measures the runner against.
add_executable(gt_server ${CMAKE_SOURCE_DIR}/bench/gt_server.c)
# bench_transport: CPU per streamed token, the runner's libcurl client against evhttp's.
add_executable(bench_transport ${CMAKE_SOURCE_DIR}/bench/bench_transport.c)
target_link_libraries(bench_transport PRIVATE bench_common)
foreach(b bench_runner bench_transport)
  target_compile_definitions(${b} PRIVATE GT_SERVER="$<TARGET_FILE:gt_server>")
  add_dependencies(${b} gt_server)
endforeach()
# bench_report: size and time of `testbench report` on a synthesized run of N requests.
add_executable(bench_report ${CMAKE_SOURCE_DIR}/bench/bench_report.c)
target_link_libraries(bench_report PRIVATE tb)
target_compile_definitions(bench_report PRIVATE TB_BINARY="$<TARGET_FILE:testbench>")
add_dependencies(bench_report testbench)
# bench_prompts: planning time and memory of a large point's prompts (src/runner/prompt_pool.h).
add_executable(bench_prompts ${CMAKE_SOURCE_DIR}/bench/bench_prompts.c)
target_link_libraries(bench_prompts PRIVATE tb)
# bench_tenancy: testbench tenancy on the simulator against plan --tenancy (the worked example).
add_executable(bench_tenancy ${CMAKE_SOURCE_DIR}/bench/bench_tenancy.c)
target_link_libraries(bench_tenancy PRIVATE bench_common)
target_compile_definitions(bench_tenancy PRIVATE TB_BINARY="$<TARGET_FILE:testbench>"
                                                 TB_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
add_dependencies(bench_tenancy testbench)
