# The report's tests drive the real binary (tests/fixtures/tb_proc.c) on results of `run --sim`,
# the sweep with GPU telemetry from the NVML test double (tests/telemetry.cmake).
foreach(t test_report test_compare test_notebook test_report_inputs)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE tb_testproc)
    add_dependencies(${t} nvml_double)
    target_compile_definitions(${t} PRIVATE NVML_DOUBLE_PATH="$<TARGET_FILE:nvml_double>")
  endif()
endforeach()
# Chromium, Jupyter and these tests' own simulator runs load both cores for seconds at a time;
# test_run_e2e asserts client timing to the sub-millisecond and test_study predicted against
# measured latencies of a real-time simulator. One at a time: the lock keeps them from
# overlapping while every other test still runs in parallel.
foreach(t test_run_e2e test_study)
  if(TARGET ${t})
    set_property(TEST ${t} APPEND PROPERTY RESOURCE_LOCK cpu_heavy_or_timing)
  endif()
endforeach()
# The report, compare and notebook tests assert no timing. In a sanitizer build, whose timing
# tests allow for the sanitizer's slowdown, they take a lock of their own (one browser or kernel
# at a time) and run beside the timing tests, which keeps the ASan suite's serial chain short;
# in the normal build, where the timing bounds are tightest, they take the timing lock.
if(SANITIZE)
  set(tb_report_lock cpu_heavy)
else()
  set(tb_report_lock cpu_heavy_or_timing)
endif()
foreach(t test_report test_compare test_notebook)
  if(TARGET ${t})
    set_property(TEST ${t} APPEND PROPERTY RESOURCE_LOCK ${tb_report_lock})
  endif()
endforeach()
# test_cli_messages drives the binary too (plan, plan --tenancy, sim: their messages).
if(TARGET test_cli_messages)
  target_link_libraries(test_cli_messages PRIVATE tb_testproc)
endif()
if(TARGET test_calibration_profile)
  target_link_libraries(test_calibration_profile PRIVATE tb_testproc)
endif()
