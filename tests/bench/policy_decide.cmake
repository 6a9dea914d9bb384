add_executable(policy_decide ${CMAKE_CURRENT_SOURCE_DIR}/policy_decide.cpp)
target_link_libraries(policy_decide PRIVATE CLI11::CLI11 licentra::policy licentra::options)
target_compile_definitions(policy_decide PRIVATE LICENTRA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
