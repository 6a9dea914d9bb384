# The audit log's disk faults end to end: a file-size limit without help from the parent, and an
# ES256 checkpoint key (real daemon, real SoftHSM token, `licentra audit verify`).
if(TARGET licentra-signd AND TARGET licentra_daemon_harness)
  licentra_test(audit_faults_integration_test LABELS integration
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/audit_faults_test.cpp
                LIBS licentra_daemon_harness nlohmann_json::nlohmann_json)
  add_dependencies(audit_faults_integration_test licentra-signd licentra)
endif()
