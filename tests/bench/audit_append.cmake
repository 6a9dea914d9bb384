# Audit append throughput and latency: group commit at 1/8/64 appenders vs one fdatasync per
# entry, in the same run, on a real disk (default /var/tmp).
add_executable(audit_append ${CMAKE_CURRENT_LIST_DIR}/audit_append.cpp)
target_link_libraries(audit_append PRIVATE CLI11::CLI11 licentra::audit Threads::Threads licentra::options)
target_include_directories(audit_append PRIVATE ${PROJECT_SOURCE_DIR}/tests)
