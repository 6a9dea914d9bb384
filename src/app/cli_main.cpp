// licentra: one command line for every user — license-server operators (token, jwks),
// security officers (keys, requests), auditors (audit, offline) and policy authors (policy).
// The command tree is built here; each command family lives in cli_<family>.cpp.
#include <string>
#include <vector>

#include "app/cli.hpp"
#include "app/version.hpp"

namespace licentra::app {

void build_cli(CLI::App& app, Outcome& outcome) {
    app.description(
        "One command line for every user of Licentra Signer: license-server operators (token, "
        "jwks), security officers (keys, requests), auditors (audit, offline) and policy "
        "authors (policy).");
    std::string version = version_line("licentra");
    while (!version.empty() && version.back() == '\n') version.pop_back();
    app.set_version_flag("--version", version, "Print the version and exit");
    app.require_subcommand(1);
    app.footer(
        "Run 'licentra <command> --help' for the options of a command. See docs/cli.md.\n"
        "Exit codes: 0 ok, 1 failed, 2 usage, 3 tampered, 4 log unreadable, 5 daemon "
        "unreachable or 5xx, 6 denied, 7 conflict, 8 local file or credentials, 9 HSM.");
    add_audit_commands(app, outcome);
    add_policy_commands(app, outcome);
    CLI::App* token = app.add_subcommand(
        "token", "Sign license tokens through the daemon, or verify them offline");
    token->require_subcommand(1);
    add_client_commands(app, *token, outcome);
    add_token_verify(*token, outcome);
    add_hsm_commands(app, outcome);
}

}  // namespace licentra::app

int main(int argc, char** argv) {
    using namespace licentra::app;
    CLI::App app("", "licentra");
    Outcome outcome;
    build_cli(app, outcome);
    return run_cli(app, std::vector<std::string>(argv + 1, argv + argc), outcome);
}
