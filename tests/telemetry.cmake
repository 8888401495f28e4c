# NVML test doubles: one source, three shared libraries (a symbol's absence needs its own
# library). test_telemetry_nvml loads them through TESTBENCH_NVML_LIB with the real loader.
add_library(nvml_double SHARED ${CMAKE_SOURCE_DIR}/tests/nvml_double.c)
add_library(nvml_double_old SHARED ${CMAKE_SOURCE_DIR}/tests/nvml_double.c)
target_compile_definitions(nvml_double_old PRIVATE NVML_DOUBLE_OLD)
add_library(nvml_double_broken SHARED ${CMAKE_SOURCE_DIR}/tests/nvml_double.c)
target_compile_definitions(nvml_double_broken PRIVATE NVML_DOUBLE_BROKEN)
foreach(lib nvml_double nvml_double_old nvml_double_broken)
  set_target_properties(${lib} PROPERTIES C_VISIBILITY_PRESET hidden)
endforeach()

if(TARGET test_telemetry_nvml)
  add_dependencies(test_telemetry_nvml nvml_double nvml_double_old nvml_double_broken)
  target_compile_definitions(test_telemetry_nvml PRIVATE
    NVML_DOUBLE_PATH="$<TARGET_FILE:nvml_double>"
    NVML_DOUBLE_OLD_PATH="$<TARGET_FILE:nvml_double_old>"
    NVML_DOUBLE_BROKEN_PATH="$<TARGET_FILE:nvml_double_broken>")
endif()
if(TARGET test_telemetry_cmd)
  add_dependencies(test_telemetry_cmd nvml_double)
  target_compile_definitions(test_telemetry_cmd PRIVATE
    NVML_DOUBLE_PATH="$<TARGET_FILE:nvml_double>")
endif()
