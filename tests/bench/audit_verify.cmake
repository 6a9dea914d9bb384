# `licentra audit verify` wall time and peak RSS on generated 100k / 1M-entry logs; runs the
# licentra binary built here (or --licentra PATH).
add_executable(audit_verify ${CMAKE_CURRENT_LIST_DIR}/audit_verify.cpp)
target_link_libraries(audit_verify PRIVATE CLI11::CLI11 licentra::audit licentra::options)
target_include_directories(audit_verify PRIVATE ${PROJECT_SOURCE_DIR}/tests)
if(TARGET licentra)
  target_compile_definitions(audit_verify PRIVATE LICENTRA_CLI_PATH="$<TARGET_FILE:licentra>")
  add_dependencies(audit_verify licentra)
endif()
