# Several replicas on one SoftHSM token acting at the same instant (docs/adr/0004).
if(TARGET licentra-signd AND TARGET licentra_daemon_harness)
  licentra_test(replicas_integration_test LABELS integration
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/replicas_test.cpp
                LIBS licentra_daemon_harness nlohmann_json::nlohmann_json)
  add_dependencies(replicas_integration_test licentra-signd licentra)
endif()
