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
