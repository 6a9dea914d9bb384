licentra_fuzz_target(audit_pruned LIBS licentra::audit)
