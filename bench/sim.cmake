# sim.cmake - bench_sim: load test of `testbench sim` (not a ctest test; run it by hand).
add_executable(bench_sim ${CMAKE_SOURCE_DIR}/bench/bench_sim.c)
target_link_libraries(bench_sim PRIVATE bench_common)
