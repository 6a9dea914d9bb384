# licentra-signd end to end: real process, real SoftHSM token, real TLS, independent verifiers.
if(TARGET licentra-signd AND TARGET licentra_daemon_harness)
  licentra_test(daemon_integration_test LABELS integration
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/daemon_api_test.cpp
                        ${CMAKE_CURRENT_LIST_DIR}/daemon_tokens_test.cpp
                        ${CMAKE_CURRENT_LIST_DIR}/daemon_lifecycle_test.cpp
                        ${CMAKE_CURRENT_LIST_DIR}/key_lifecycle_test.cpp
                        ${CMAKE_CURRENT_LIST_DIR}/daemon_log_test.cpp
                        ${CMAKE_CURRENT_LIST_DIR}/daemon_public_jwks_test.cpp
                        ${CMAKE_CURRENT_LIST_DIR}/pseudonym_epochs_test.cpp
                        ${CMAKE_CURRENT_LIST_DIR}/audit_prune_test.cpp
                LIBS licentra_daemon_harness licentra::crypto nlohmann_json::nlohmann_json)
  add_dependencies(daemon_integration_test licentra-signd licentra)
endif()
# /metrics: promtool's check, and the counters against the audit log after a mixed workload.
if(TARGET licentra-signd AND TARGET licentra_daemon_harness)
  licentra_test(daemon_metrics_test LABELS integration
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/daemon_metrics_test.cpp
                LIBS licentra_daemon_harness nlohmann_json::nlohmann_json)
  add_dependencies(daemon_metrics_test licentra-signd)
endif()
