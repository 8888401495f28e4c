# The end-to-end tests drive the real binary (tests/fixtures/tb_proc.c); test_run_e2e also
# runs it against the transport tests' fake server and through the NVML test double.
add_library(tb_testproc STATIC ${CMAKE_SOURCE_DIR}/tests/fixtures/tb_proc.c)
target_include_directories(tb_testproc PUBLIC ${CMAKE_SOURCE_DIR}/tests/fixtures)
target_link_libraries(tb_testproc PUBLIC tb)
foreach(t test_run_e2e test_docs test_harden_run test_harden_run2 test_workload test_workload_e2e)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE tb_testproc)
  endif()
endforeach()
if(TARGET test_run_e2e)
  target_link_libraries(test_run_e2e PRIVATE tb_fake_server)
  # nvml_double is defined in tests/telemetry.cmake, included later; names resolve at
  # generate time.
  add_dependencies(test_run_e2e nvml_double)
  target_compile_definitions(test_run_e2e PRIVATE NVML_DOUBLE_PATH="$<TARGET_FILE:nvml_double>")
endif()
foreach(t test_harden_run test_harden_run2)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE tb_fake_server)
  endif()
endforeach()
if(TARGET test_harden_run2)
  # Runs of 1,000 sessions on the simulator in the binary: not beside the timing tests.
  set_property(TEST test_harden_run2 APPEND PROPERTY RESOURCE_LOCK cpu_heavy_or_timing)
endif()
# test_load runs `run --workers 2`, a coordinator with two workers and merges against the
# simulator, and compares their throughput with a single runner's within 2 %: a real-time test.
if(TARGET test_load)
  target_link_libraries(test_load PRIVATE tb_testproc)
  set_property(TEST test_load APPEND PROPERTY RESOURCE_LOCK cpu_heavy_or_timing)
endif()
