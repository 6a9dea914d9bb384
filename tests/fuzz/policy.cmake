licentra_fuzz_target(policy LIBS licentra::policy)
licentra_fuzz_target(policy_request LIBS licentra::policy)
