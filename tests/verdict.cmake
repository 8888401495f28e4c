# test_verdict_e2e drives the real binary against the in-process simulator
# (tests/fixtures/tb_proc.c); its study launches `testbench sim --fail-pct` as a command backend.
if(TARGET test_verdict_e2e)
  target_link_libraries(test_verdict_e2e PRIVATE tb_testproc)
  set_property(TEST test_verdict_e2e APPEND PROPERTY RESOURCE_LOCK cpu_heavy_or_timing)
endif()
