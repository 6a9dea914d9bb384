# licentra-signd in front of libp11fault.so (tests/p11fault): HSM faults, hangs and delays
# injected under a signing load; deadlines, readiness and recovery (docs/hsm.md). One case
# preloads libfsfault.so (tests/fsfault) to freeze the audit log's fdatasync (docs/audit.md).
# One CTest entry for the whole suite (the cases share one deployment) with the labels fault
# and integration (gtest_discover_tests flattens a label list).
if(TARGET licentra-signd AND TARGET licentra_daemon_harness)
  add_executable(hsm_faults_test ${CMAKE_CURRENT_LIST_DIR}/hsm_faults_test.cpp)
  target_link_libraries(hsm_faults_test PRIVATE licentra_daemon_harness licentra::crypto
                        nlohmann_json::nlohmann_json licentra_test_support GTest::gtest
                        GTest::gtest_main licentra::options)
  add_dependencies(hsm_faults_test licentra-signd licentra p11fault fsfault)
  target_compile_definitions(hsm_faults_test PRIVATE P11FAULT_LIBRARY="$<TARGET_FILE:p11fault>"
                             FSFAULT_LIBRARY="$<TARGET_FILE:fsfault>")
  add_test(NAME HsmFaults COMMAND hsm_faults_test)
  set_tests_properties(HsmFaults PROPERTIES LABELS "integration;fault" TIMEOUT 180)
endif()
