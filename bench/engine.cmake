# bench/engine.cmake - bench_plan: engine speed (tokens simulated per CPU-second, steps/s with
# 2,000 concurrent requests). Built with the project, never run by ctest.
add_executable(bench_plan ${CMAKE_SOURCE_DIR}/bench/bench_plan.c)
target_link_libraries(bench_plan PRIVATE tb)
