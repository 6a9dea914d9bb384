# licentra-signd against a remote PKCS#11 peer: `p11-kit server` in front of the SoftHSM token
# on a unix socket, the daemon's hsm.module pointed at p11-kit-client.so (no EdDSA there), a
# policy whose keys are all ES256 and audit.key_algorithm ES256.
if(TARGET licentra-signd AND TARGET licentra_daemon_harness)
  licentra_test(p11kit_remote_test LABELS integration
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/p11kit_remote_test.cpp
                LIBS licentra_daemon_harness licentra::crypto nlohmann_json::nlohmann_json)
  add_dependencies(p11kit_remote_test licentra-signd licentra)
endif()
