# The transport tests' fake OpenAI-compatible server (tests/fixtures/fake_server.c), linked
# into test_client; it runs in a thread of the test process on 127.0.0.1, port 0.
add_library(tb_fake_server STATIC ${CMAKE_SOURCE_DIR}/tests/fixtures/fake_server.c)
target_include_directories(tb_fake_server PUBLIC ${CMAKE_SOURCE_DIR}/tests/fixtures)
target_link_libraries(tb_fake_server PUBLIC PkgConfig::EVENT PkgConfig::JANSSON Threads::Threads)
if(TARGET test_client)
  target_link_libraries(test_client PRIVATE tb_fake_server)
endif()
