// licentra: one command line for every user — license-server operators (token, jwks),
// security officers (keys, requests), auditors (audit, offline) and policy authors (policy).
#include <iostream>
#include <string>
#include <vector>

#include "app/cli.hpp"
#include "app/version.hpp"

namespace {

constexpr const char* kUsage = R"(usage: licentra <command> [options]
       licentra --version

commands:
  audit     verify an audit log offline; print checkpoints and proofs
  policy    check a policy file and print its permission matrix
  token     sign (through the daemon) or verify (offline) license tokens
  jwks      fetch the daemon's public keys
  keys      list keys; request rotation, retirement, destruction
  requests  list, approve or reject pending key requests
  hsm       list or generate key versions directly on a PKCS#11 token (operators)

Run 'licentra <command> --help' for the options of a command. See docs/cli.md.
)";

}  // namespace

int main(int argc, char** argv) {
    using namespace licentra::app;
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        std::cout << kUsage;
        return args.empty() ? kExitUsage : kExitOk;
    }
    const std::string& cmd = args[0];
    if (cmd == "--version") {
        std::cout << version_line("licentra");
        return kExitOk;
    }
    if (cmd == "audit") return cli_audit(args);
    if (cmd == "policy") return cli_policy(args);
    if (cmd == "hsm") return cli_hsm(args);
    if (cmd == "token" || cmd == "jwks" || cmd == "keys" || cmd == "requests") {
        return cli_client(args);
    }
    std::cerr << "licentra: unknown command '" << cmd << "'\n" << kUsage;
    return kExitUsage;
}
