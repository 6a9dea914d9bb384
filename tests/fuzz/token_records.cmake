licentra_fuzz_target(token_records LIBS licentra::keys licentra::service)
