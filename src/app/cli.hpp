// Shared pieces of the `licentra` command line: argument parsing and exit codes.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace licentra::app {

// Exit codes shared by every `licentra` subcommand (documented in docs/cli.md).
enum ExitCode : int {
    kExitOk = 0,
    kExitFailure = 1,      // the operation ran and failed (verification failed, request denied)
    kExitUsage = 2,        // bad command line
    kExitTampered = 3,     // audit verify: the log or a checkpoint does not verify
    kExitUnreadable = 4,   // audit verify: the log cannot be read or parsed at all
    kExitUnavailable = 5,  // the server or HSM could not be reached
};

// Parses "--name value", "--name=value", boolean "--flag" and positionals. Options that take a
// value are declared up front so "--key FILE" and "--json" are told apart.
class Args {
  public:
    Args(std::vector<std::string> argv, std::set<std::string> value_options,
         std::set<std::string> flag_options);

    [[nodiscard]] bool ok() const { return error_.empty(); }
    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] std::optional<std::string> get(const std::string& name) const;
    [[nodiscard]] bool has(const std::string& name) const;
    [[nodiscard]] const std::vector<std::string>& positional() const { return positional_; }

  private:
    std::map<std::string, std::string> values_;
    std::set<std::string> flags_;
    std::vector<std::string> positional_;
    std::string error_;
};

// Subcommand entry points: argv[0] is the subcommand's own name ("audit", "policy", ...).
int cli_audit(const std::vector<std::string>& args);
int cli_policy(const std::vector<std::string>& args);
int cli_client(const std::vector<std::string>& args);  // token, jwks, keys, requests
int cli_hsm(const std::vector<std::string>& args);     // keys, generate (operator, on the token)
// `licentra token verify TOKEN_FILE|- --jwks FILE [--json]` (offline, licentra/verify.hpp).
// args: the words after `licentra token`, i.e. starting with "verify" (a leading "token" is
// tolerated too). Defined in cli_verify.cpp.
int cli_token_verify(const std::vector<std::string>& args);

}  // namespace licentra::app
