# test_session runs `testbench run` with sessions against the simulator (tests/fixtures/tb_proc.c).
if(TARGET test_session)
  target_link_libraries(test_session PRIVATE tb_testproc)
endif()
