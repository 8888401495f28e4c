# Test labels that scripts/test.sh selects on.
#
# threads_elsewhere: end-to-end tests whose only threads are the runner's (its event loop,
# prompt pools, checkpoint writer), the in-process simulator's and the telemetry sampler's. Those
# threads are exercised under ThreadSanitizer by test_run_e2e, test_session, test_sim_server,
# test_sim_instances, test_load, test_harden_run(2), test_tenancy_measure and the telemetry
# tests; what these add (study, report, calibration, notebook, CLI drivers) is single-threaded
# code, which the normal and ASan builds run. Skipping them under TSan (5-15x slower there) keeps
# CI within its time.
foreach(t test_study test_study_harden test_study_resume test_study_backend test_report
          test_report_inputs test_compare test_notebook test_calibrate test_calibration_profile
          test_cli_messages test_verdict_e2e test_workload_e2e)
  if(TARGET ${t})
    set_property(TEST ${t} APPEND PROPERTY LABELS threads_elsewhere)
  endif()
endforeach()

# timing: tests whose claims are bounds on wall-clock time or on figures measured in real time
# (request release and token timestamps, calibration from real-time runs, merged load against a
# single runner, tenancy against the plan), or that skip a part under the sanitizers. Every test
# runs under AddressSanitizer + UndefinedBehaviorSanitizer; these run again in the normal
# (optimised) build, where their bounds are tightest and a sanitizer's slowdown cannot hide a
# regression.
foreach(t test_calibrate test_client test_load test_ptimer test_run_e2e test_session
          test_sim_server test_sim_instances test_tenancy_measure test_report_inputs
          test_selfcheck test_verdict_e2e test_harden_run test_telemetry_cmd
          test_telemetry_scrape test_telemetry_prom)
  if(TARGET ${t})
    set_property(TEST ${t} APPEND PROPERTY LABELS timing)
  endif()
endforeach()
