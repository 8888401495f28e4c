# test_calibrate drives the real-time simulator and fits what it measured: it holds the
# cpu_heavy_or_timing lock, so no other timing test or heavy run shares the cores with it (the
# fit's rule, "half way from the default to the truth", holds with margin beside lighter tests).
if(TARGET test_calibrate)
  set_property(TEST test_calibrate APPEND PROPERTY RESOURCE_LOCK cpu_heavy_or_timing)
endif()
# The planner's tests run the built binary through the fixtures' shell capture.
foreach(t test_calibrate test_plan test_validation)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE tb_testproc)
  endif()
endforeach()
