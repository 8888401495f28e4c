# test_tenancy_measure runs `testbench tenancy` with the NVML double, so the energy attribution
# has a GPU energy to split.
if(TARGET test_tenancy_measure)
  add_dependencies(test_tenancy_measure nvml_double)
  target_compile_definitions(test_tenancy_measure PRIVATE
    NVML_DOUBLE_PATH="$<TARGET_FILE:nvml_double>")
endif()
