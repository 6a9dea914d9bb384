licentra_fuzz_target(audit_receipt LIBS licentra::audit licentra::verify)
