# Replicas of licentra-signd on one token behind a real HAProxy (config/haproxy.cfg.in): failover
# under load, per-replica audit logs.
if(TARGET licentra-signd AND TARGET licentra_daemon_harness)
  licentra_test(ha_integration_test LABELS integration
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/ha_test.cpp
                LIBS licentra_daemon_harness licentra::crypto nlohmann_json::nlohmann_json
                PROPERTIES RESOURCE_LOCK licentra_replica_clusters)
  add_dependencies(ha_integration_test licentra-signd licentra)
endif()
