# GET /v1/tokens/receipt end to end: a real daemon on SoftHSM over TLS; the receipt checked by
# `licentra token verify`, the product library, Go's sumdb/note and an RFC 9162 script.
if(TARGET licentra-signd AND TARGET licentra_daemon_harness AND TARGET licentra)
  licentra_test(daemon_receipts_test LABELS integration
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/daemon_receipts_test.cpp
                LIBS licentra_daemon_harness licentra::verify nlohmann_json::nlohmann_json)
  add_dependencies(daemon_receipts_test licentra-signd licentra)
endif()
