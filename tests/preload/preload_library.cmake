# licentra_preload_library(TARGET): the settings every fault-injecting shared library loaded into
# the daemon under test shares (libp11fault.so, libfsfault.so): hidden symbols except those its
# exports.map names, the project's warnings and hardening without -pie, libc and libdl only.
function(licentra_preload_library target)
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME ${target}
    PREFIX lib
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  target_include_directories(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_options(${target} PRIVATE
    $<TARGET_PROPERTY:licentra_options,INTERFACE_COMPILE_OPTIONS>)
  target_compile_definitions(${target} PRIVATE
    $<TARGET_PROPERTY:licentra_options,INTERFACE_COMPILE_DEFINITIONS>)
  target_link_options(${target} PRIVATE -Wl,-z,relro,-z,now
    -Wl,--version-script=${CMAKE_CURRENT_SOURCE_DIR}/exports.map)
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS
    ${CMAKE_CURRENT_SOURCE_DIR}/exports.map)
  target_link_libraries(${target} PRIVATE ${CMAKE_DL_LIBS} Threads::Threads)
endfunction()
