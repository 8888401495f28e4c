# test_session runs `testbench run` with sessions against the simulator (tests/fixtures/tb_proc.c)
# and checks that a user's wait is the server's TTFT to a few milliseconds: it takes the lock
# of the timing-sensitive tests (tests/report.cmake).
if(TARGET test_session)
  target_link_libraries(test_session PRIVATE tb_testproc)
  set_property(TEST test_session APPEND PROPERTY RESOURCE_LOCK cpu_heavy_or_timing)
endif()
