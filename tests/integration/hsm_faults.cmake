# licentra-signd in front of libp11fault.so (tests/p11fault): HSM faults, hangs and delays
# injected under a signing load; deadlines, readiness and recovery (docs/hsm.md).
if(TARGET licentra-signd AND TARGET licentra_daemon_harness)
  licentra_test(hsm_faults_test LABELS "integration;fault"
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/hsm_faults_test.cpp
                LIBS licentra_daemon_harness licentra::crypto nlohmann_json::nlohmann_json)
  add_dependencies(hsm_faults_test licentra-signd licentra p11fault)
  target_compile_definitions(hsm_faults_test PRIVATE P11FAULT_LIBRARY="$<TARGET_FILE:p11fault>")
endif()
