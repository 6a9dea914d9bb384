licentra_fuzz_target(token_jwks LIBS licentra::verify)
