# The report's tests drive the real binary (tests/fixtures/tb_proc.c) on results of `run --sim`,
# the sweep with GPU telemetry from the NVML test double (tests/telemetry.cmake).
foreach(t test_report test_compare test_notebook)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE tb_testproc)
    add_dependencies(${t} nvml_double)
    target_compile_definitions(${t} PRIVATE NVML_DOUBLE_PATH="$<TARGET_FILE:nvml_double>")
  endif()
endforeach()
