# p11kit_remote: a bare C_SignInit + C_Sign loop over any PKCS#11 module (SoftHSM in-process,
# or p11-kit-client.so talking to `p11-kit server`); scripts/bench compares the daemon with it.
add_executable(p11kit_remote ${CMAKE_CURRENT_LIST_DIR}/p11kit_remote.cpp)
target_link_libraries(p11kit_remote PRIVATE CLI11::CLI11 licentra::crypto PkgConfig::P11KIT ${CMAKE_DL_LIBS}
                      Threads::Threads licentra::options)
