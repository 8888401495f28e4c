# bench/validation.cmake - bench_validation: plan against published measurements
# (bench/validation/*.yaml). Built with the project, never run by ctest.
add_executable(bench_validation ${CMAKE_SOURCE_DIR}/bench/bench_validation.c)
target_link_libraries(bench_validation PRIVATE tb)
target_compile_definitions(bench_validation PRIVATE TB_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
