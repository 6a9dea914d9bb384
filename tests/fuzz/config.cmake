licentra_fuzz_target(config LIBS licentra::config)
