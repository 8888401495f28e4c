# test_session runs `testbench run` with sessions against the simulator and against the transport
# tests' fake server (tests/fixtures/tb_proc.c, fake_server.c). It checks that a user's wait is the
# server's TTFT to a few milliseconds, so it takes the lock of the timing-sensitive tests
# (tests/report.cmake).
if(TARGET test_session)
  target_link_libraries(test_session PRIVATE tb_testproc tb_fake_server)
  set_property(TEST test_session APPEND PROPERTY RESOURCE_LOCK cpu_heavy_or_timing)
endif()
