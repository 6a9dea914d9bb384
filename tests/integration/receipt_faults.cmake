# GET /v1/tokens/receipt while the HSM cannot sign checkpoints: licentra-signd in front of
# libp11fault.so (tests/p11fault), 503 with Retry-After, then the receipt once signing is back.
if(TARGET licentra-signd AND TARGET licentra_daemon_harness AND TARGET p11fault)
  licentra_test(receipt_faults_test LABELS integration
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/receipt_faults_test.cpp
                LIBS licentra_daemon_harness licentra::verify nlohmann_json::nlohmann_json)
  add_dependencies(receipt_faults_test licentra-signd p11fault)
  target_compile_definitions(receipt_faults_test PRIVATE
                             P11FAULT_LIBRARY="$<TARGET_FILE:p11fault>")
endif()
