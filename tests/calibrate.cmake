# test_calibrate drives the real-time simulator and fits what it measured to 3 %: run it alone,
# so that other tests' load does not show up in its timings (nor its load in theirs).
if(TARGET test_calibrate)
  set_tests_properties(test_calibrate PROPERTIES RUN_SERIAL TRUE)
endif()
