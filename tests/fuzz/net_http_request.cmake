licentra_fuzz_target(net_http_request LIBS licentra::net)
