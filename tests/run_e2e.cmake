# test_run_e2e also drives `testbench run` against the transport tests' fake server.
if(TARGET test_run_e2e)
  target_link_libraries(test_run_e2e PRIVATE tb_fake_server)
endif()
# ... and through the NVML test double, loaded by the real loader (TESTBENCH_NVML_LIB).
# (nvml_double is defined in tests/telemetry.cmake, included later; names resolve at generate time.)
if(TARGET test_run_e2e)
  add_dependencies(test_run_e2e nvml_double)
  target_compile_definitions(test_run_e2e PRIVATE NVML_DOUBLE_PATH="$<TARGET_FILE:nvml_double>")
endif()
