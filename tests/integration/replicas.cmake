# Several replicas on one SoftHSM token acting at the same instant (docs/adr/0004). Each case
# runs alone (RUN_SERIAL): on a 2-core machine, another cluster or another daemon suite beside
# it starves the replicas' claim steps past cluster.claim_write_bound (SoftHSM reads every
# object file of the token on each search), and a request nobody can claim stays pending.
if(TARGET licentra-signd AND TARGET licentra_daemon_harness)
  licentra_test(replicas_integration_test LABELS integration
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/replicas_test.cpp
                LIBS licentra_daemon_harness nlohmann_json::nlohmann_json
                PROPERTIES RUN_SERIAL TRUE)
  add_dependencies(replicas_integration_test licentra-signd licentra)
endif()
