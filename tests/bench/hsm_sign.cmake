# HSM signing throughput and latency: pooled Token::sign vs raw C_Sign on pre-opened sessions.
add_executable(hsm_sign ${CMAKE_CURRENT_LIST_DIR}/hsm_sign.cpp)
target_link_libraries(hsm_sign PRIVATE CLI11::CLI11 licentra::hsm licentra::keys licentra_test_support PkgConfig::P11KIT
                      Threads::Threads licentra::options)
