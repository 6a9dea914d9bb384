# sign_load: the mTLS load client (the daemon's end-to-end benchmark drives it), and
# sign_load_handoff: the io_context -> WorkPool -> strand hand-off cost.
add_executable(sign_load ${CMAKE_CURRENT_SOURCE_DIR}/sign_load.cpp)
target_link_libraries(sign_load PRIVATE CLI11::CLI11 licentra::net licentra::options)
add_executable(sign_load_handoff ${CMAKE_CURRENT_SOURCE_DIR}/sign_load_handoff.cpp)
target_link_libraries(sign_load_handoff PRIVATE CLI11::CLI11 licentra::net licentra::options)
add_executable(sign_load_echo_server ${CMAKE_CURRENT_SOURCE_DIR}/sign_load_echo_server.cpp)
target_link_libraries(sign_load_echo_server PRIVATE CLI11::CLI11 licentra::net licentra::options)
