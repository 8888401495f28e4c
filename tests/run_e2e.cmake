# test_run_e2e also drives `testbench run` against the transport tests' fake server.
if(TARGET test_run_e2e)
  target_link_libraries(test_run_e2e PRIVATE tb_fake_server)
endif()
