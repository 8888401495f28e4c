# test_tenancy_measure runs `testbench tenancy` with the NVML double, so the energy attribution
# has a GPU energy to split.
if(TARGET test_tenancy_measure)
  add_dependencies(test_tenancy_measure nvml_double)
  # agrees_with_the_plan compares real-time runs on the simulator with the plan: not beside
  # the other timing tests.
  set_property(TEST test_tenancy_measure APPEND PROPERTY RESOURCE_LOCK cpu_heavy_or_timing)
  target_compile_definitions(test_tenancy_measure PRIVATE
    NVML_DOUBLE_PATH="$<TARGET_FILE:nvml_double>")
endif()
# test_sim_instances compares real-time decode rates of simulated instances alone and together
# (MIG slices within 15-20 %); other tests' load on the two cores shows up in those ratios, so it
# takes the timing lock with the other real-time tests.
if(TARGET test_sim_instances)
  set_property(TEST test_sim_instances APPEND PROPERTY RESOURCE_LOCK cpu_heavy_or_timing)
endif()
