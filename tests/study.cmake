# test_study drives the real binary (tests/fixtures/tb_proc.c) through whole studies, with GPU
# telemetry from the NVML test double (tests/telemetry.cmake).
if(TARGET test_study)
  target_link_libraries(test_study PRIVATE tb_testproc)
  add_dependencies(test_study nvml_double)
  target_compile_definitions(test_study PRIVATE NVML_DOUBLE_PATH="$<TARGET_FILE:nvml_double>")
endif()
if(TARGET test_study_backend)
  target_link_libraries(test_study_backend PRIVATE tb_testproc)
endif()
if(TARGET test_study_resume)
  target_link_libraries(test_study_resume PRIVATE tb_testproc)
endif()
# test_scale runs some twenty small studies through the real binary: under ThreadSanitizer on a
# loaded 2-core machine that took 170 s, so it gets room beyond the default 300 s.
if(TARGET test_scale)
  target_link_libraries(test_scale PRIVATE tb_testproc)
  set_tests_properties(test_scale PROPERTIES TIMEOUT 600)
endif()
# src/scale's study drivers start no threads of their own (processes and files only): their tests
# (the slowest there, 170 s) stay out of the ThreadSanitizer run, which has nothing to find in
# them that test_study and test_study_resume do not exercise; scripts/test.sh leaves out the label.
foreach(t test_scale test_scale_k8s)
  if(TARGET ${t})
    set_property(TEST ${t} APPEND PROPERTY LABELS no_threads)
  endif()
endforeach()
# test_scale_slurm needs a running cluster (scripts/slurm.sh; scripts/test.sh runs it alone, in
# its own step): the label keeps it out of the other ctest runs.
if(TARGET test_scale_slurm)
  target_link_libraries(test_scale_slurm PRIVATE tb_testproc)
  set_tests_properties(test_scale_slurm PROPERTIES LABELS slurm)
endif()
if(TARGET test_scale_k8s)
  target_link_libraries(test_scale_k8s PRIVATE tb_testproc)
endif()
if(TARGET test_study_harden)
  target_link_libraries(test_study_harden PRIVATE tb_testproc)
endif()
