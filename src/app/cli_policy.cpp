// `licentra policy check FILE`: validates a policy file and prints its effective permission
// matrix and SHA-256 (exit 0), or every error with file, line, column and key path (exit 1).
#include <iostream>

#include "app/cli.hpp"
#include "policy/loader.hpp"

namespace licentra::app {

namespace {

constexpr const char* kPolicyUsage = R"(usage: licentra policy check FILE

Validates the policy FILE. On success prints the policy's SHA-256 (the value approval requests
are bound to), the effective permission matrix (principal x action x key), the identities and
the per-key rules, and exits 0. On failure prints every error as FILE:LINE:COLUMN: PATH: MESSAGE
on stderr and exits 1. See docs/policy.md.
)";

}  // namespace

int cli_policy(const std::vector<std::string>& args) {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    Args parsed(rest, {}, {"--help"});
    if (!parsed.ok()) {
        std::cerr << "licentra policy: " << parsed.error() << "\n" << kPolicyUsage;
        return kExitUsage;
    }
    if (parsed.has("--help")) {
        std::cout << kPolicyUsage;
        return kExitOk;
    }
    const auto& pos = parsed.positional();
    if (pos.size() != 2 || pos[0] != "check") {
        std::cerr << kPolicyUsage;
        return kExitUsage;
    }
    const policy::PolicyLoad loaded = policy::load_policy_file(pos[1]);
    if (!loaded.ok()) {
        for (const policy::Diagnostic& d : loaded.diagnostics) std::cerr << d.to_string() << "\n";
        std::cerr << loaded.diagnostics.size() << " error(s); the policy was not accepted\n";
        return kExitFailure;
    }
    std::cout << "policy " << pos[1] << "\n"
              << "sha256 " << loaded.engine->sha256_hex() << "\n"
              << loaded.engine->render_matrix();
    return kExitOk;
}

}  // namespace licentra::app
