# The `licentra` client commands against a real licentra-signd: requests list shows force and
# every parameter; the daemon's 403 and 409 map to their own exit codes.
if(TARGET licentra-signd AND TARGET licentra_daemon_harness AND TARGET licentra)
  licentra_test(cli_daemon_test LABELS integration
                SOURCES ${CMAKE_CURRENT_LIST_DIR}/cli_daemon_test.cpp
                LIBS licentra_daemon_harness nlohmann_json::nlohmann_json)
  add_dependencies(cli_daemon_test licentra-signd licentra)
endif()
