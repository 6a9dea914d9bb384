licentra_fuzz_target(audit_checkpoint LIBS licentra::audit)
