# Several replicas on one SoftHSM token acting at the same instant (docs/adr/0004). One cluster
# at a time (the lock, shared with the HAProxy suite): two clusters writing two SoftHSM file
# stores at once on a 2-core machine starve each other's token writes; other suites still run
# beside them.
if(TARGET licentra-signd AND TARGET licentra_daemon_harness)
  licentra_test(replicas_integration_test LABELS integration
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/replicas_test.cpp
                LIBS licentra_daemon_harness nlohmann_json::nlohmann_json
                PROPERTIES RESOURCE_LOCK licentra_replica_clusters)
  add_dependencies(replicas_integration_test licentra-signd licentra)
endif()
