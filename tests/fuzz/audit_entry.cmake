licentra_fuzz_target(audit_entry LIBS licentra::audit)
