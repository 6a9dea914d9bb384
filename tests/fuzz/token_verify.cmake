licentra_fuzz_target(token_verify LIBS licentra::verify)
