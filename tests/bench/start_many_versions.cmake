# Daemon start to /readyz with many versions of one key and their requests on the token.
if(TARGET licentra_daemon_harness AND TARGET licentra_wiring)
  add_executable(start_many_versions ${CMAKE_CURRENT_LIST_DIR}/start_many_versions.cpp)
  target_link_libraries(start_many_versions PRIVATE CLI11::CLI11 licentra_daemon_harness licentra::wiring
                        licentra::keys licentra::policy licentra::service licentra::token
                        licentra::hsm licentra::options nlohmann_json::nlohmann_json)
endif()
