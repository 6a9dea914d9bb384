// Shared pieces of the `licentra` command line: exit codes, the CLI11 command tree, local files
// and the client profile file.
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace licentra::app {

// Exit codes shared by every `licentra` command (documented in docs/cli.md). This enum is the
// one definition; docs/cli.md lists the same numbers.
enum ExitCode : int {
    kExitOk = 0,
    kExitFailure = 1,      // the operation ran and failed (token invalid, policy invalid, 4xx)
    kExitUsage = 2,        // bad command line
    kExitTampered = 3,     // audit: a log or a checkpoint does not verify
    kExitUnreadable = 4,   // audit: the log cannot be read or parsed at all
    kExitUnavailable = 5,  // the daemon could not be reached, or answered 5xx
    kExitDenied = 6,       // the daemon refused the caller (401, 403)
    kExitConflict = 7,     // the daemon answered 409 (state conflict, request closed, ...)
    kExitLocal = 8,        // a local file, credential or the profile file is unreadable or invalid
    kExitHsm = 9,          // hsm: the PKCS#11 module, token or an operation on it failed
};

// Where a command stores its exit code. Each leaf command's CLI11 callback sets `code`.
struct Outcome {
    int code = kExitOk;
};

// Parses args (without the program name) with app, runs the chosen command and returns its exit
// code: 0 for --help and --version, kExitUsage for a bad command line (the error and a hint to
// --help on stderr).
int run_cli(CLI::App& app, std::vector<std::string> args, const Outcome& outcome);

// The top-level `licentra` application with every command registered into `outcome`.
void build_cli(CLI::App& app, Outcome& outcome);

// Command families; each registers its subcommands below `parent`.
void add_audit_commands(CLI::App& root, Outcome& outcome);
void add_policy_commands(CLI::App& root, Outcome& outcome);
void add_hsm_commands(CLI::App& root, Outcome& outcome);
// `licentra audit anchor` (reads the token, so it lives with the hsm commands).
void add_audit_anchor(CLI::App& audit, Outcome& outcome);
// `licentra audit retention` (reads the token and the policy).
void add_audit_retention(CLI::App& audit, Outcome& outcome);
// token sign, jwks, keys, requests (cli_client.cpp); `token` is the `licentra token` group.
void add_client_commands(CLI::App& root, CLI::App& token, Outcome& outcome);
// `licentra token verify` (cli_verify.cpp), offline.
void add_token_verify(CLI::App& token, Outcome& outcome);

// `licentra token verify TOKEN_FILE|- --jwks FILE [--json]` as a function (for tests): args are
// the words after `licentra token`, i.e. starting with "verify" (a leading "token" is tolerated).
int cli_token_verify(const std::vector<std::string>& args);

// Reads a whole local file ("-" is standard input when allow_stdin). On failure returns nullopt
// and sets *error to "cannot read PATH: <OS error>" (or "PATH is larger than N bytes").
std::optional<std::string> read_local_file(const std::string& path, std::string* error,
                                           std::size_t limit = 64 * 1024 * 1024,
                                           bool allow_stdin = false);
// Checks that PATH can be opened for reading; the same error text as read_local_file.
bool check_readable(const std::string& path, std::string* error);

// Connection settings for commands that talk to licentra-signd.
struct Connection {
    std::string server;
    std::string cert;
    std::string key;
    std::string ca;
};

// The client profile file: $XDG_CONFIG_HOME/licentra/config.yaml (default
// ~/.config/licentra/config.yaml), named profiles with server, cert, key, ca.
std::string profile_file_path();
// Loads `name` (empty: the profile named "default" if the file has one; no file: nothing) from
// `file`. Relative paths resolve against the file's directory. Unknown keys, wrong types and a
// missing named profile are errors "FILE:LINE:COLUMN: KEY: ...".
bool load_profile(const std::string& file, const std::string& name, Connection* out,
                  std::string* error);

}  // namespace licentra::app
