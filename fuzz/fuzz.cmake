# fuzz.cmake - the harnesses in fuzz/ (docs/FUZZING.md).
#
# Every build: fuzz_replay_<target> (the harness + replay.c's main, normal compiler) and a
# ctest of the same name that replays fuzz/corpus/<target> and fuzz/regressions/<target>.
# With -DTB_FUZZ=ON (clang only; scripts/fuzz.sh): fuzz_<target>, linked with libFuzzer.
set(TB_FUZZ_TARGETS sse chunk config prom sim_request workload)
foreach(t ${TB_FUZZ_TARGETS})
  set(dirs ${CMAKE_SOURCE_DIR}/fuzz/corpus/${t})
  if(EXISTS ${CMAKE_SOURCE_DIR}/fuzz/regressions/${t})
    list(APPEND dirs ${CMAKE_SOURCE_DIR}/fuzz/regressions/${t})
  endif()
  add_executable(fuzz_replay_${t} ${CMAKE_SOURCE_DIR}/fuzz/fuzz_${t}.c
                 ${CMAKE_SOURCE_DIR}/fuzz/replay.c)
  target_link_libraries(fuzz_replay_${t} PRIVATE tb)
  add_test(NAME fuzz_replay_${t} COMMAND fuzz_replay_${t} ${dirs})
  set_tests_properties(fuzz_replay_${t} PROPERTIES TIMEOUT 120)
  if(TB_FUZZ)
    add_executable(fuzz_${t} ${CMAKE_SOURCE_DIR}/fuzz/fuzz_${t}.c)
    target_link_libraries(fuzz_${t} PRIVATE tb)
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
  endif()
endforeach()
