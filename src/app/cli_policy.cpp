// `licentra policy check FILE [--json]`: validates a policy file and prints its effective
// permission matrix and SHA-256 (exit 0), or every error with file, line, column and key path
// (exit 1).
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/cli.hpp"
#include "crypto/algorithm.hpp"
#include "policy/loader.hpp"

namespace licentra::app {

namespace {

struct PolicyCheckOptions {
    std::string file;
    bool json = false;
};

nlohmann::json engine_json(const std::string& file, const policy::Engine& engine) {
    nlohmann::json permissions = nlohmann::json::array();
    nlohmann::json principals = nlohmann::json::array();
    for (const policy::Principal& p : engine.principals()) {
        principals.push_back({{"name", p.name}, {"roles", p.roles}});
        for (policy::Action a : policy::kAllActions) {
            const std::string action(policy::action_name(a));
            if (!policy::action_is_key_scoped(a)) {
                if (engine.permits(p, a, {})) {
                    permissions.push_back(
                        {{"principal", p.name}, {"action", action}, {"key", nullptr}});
                }
                continue;
            }
            for (const policy::KeyRules& k : engine.keys()) {
                if (engine.permits(p, a, k.name)) {
                    permissions.push_back(
                        {{"principal", p.name}, {"action", action}, {"key", k.name}});
                }
            }
        }
    }
    nlohmann::json keys = nlohmann::json::array();
    for (const policy::KeyRules& k : engine.keys()) {
        std::vector<std::string> approvers;
        for (const policy::Principal* p : engine.approvers(k.name)) approvers.push_back(p->name);
        nlohmann::json approval = nlohmann::json::object();
        for (policy::Operation op : policy::kAllOperations) {
            approval[std::string(policy::operation_name(op))] = {{"quorum", k.approval(op).quorum},
                                                                 {"approvers", approvers}};
        }
        keys.push_back({{"name", k.name},
                        {"algorithm", std::string(crypto::jws_name(k.algorithm))},
                        {"issuer", k.issuer},
                        {"approval", std::move(approval)}});
    }
    return {{"file", file},
            {"valid", true},
            {"version", engine.version()},
            {"sha256", engine.sha256_hex()},
            {"permissions", std::move(permissions)},
            {"principals", std::move(principals)},
            {"keys", std::move(keys)},
            {"report", engine.render_matrix()}};
}

int policy_check(const PolicyCheckOptions& o) {
    std::string error;
    if (!check_readable(o.file, &error)) {
        std::cerr << "licentra: " << error << "\n";
        return kExitLocal;
    }
    const policy::PolicyLoad loaded = policy::load_policy_file(o.file);
    if (!loaded.ok()) {
        if (o.json) {
            nlohmann::json errors = nlohmann::json::array();
            for (const policy::Diagnostic& d : loaded.diagnostics) {
                errors.push_back({{"file", d.file},
                                  {"line", d.line},
                                  {"column", d.column},
                                  {"path", d.path},
                                  {"message", d.message}});
            }
            std::cout
                << nlohmann::json{{"file", o.file}, {"valid", false}, {"errors", errors}}.dump(2)
                << "\n";
        } else {
            for (const policy::Diagnostic& d : loaded.diagnostics) {
                std::cerr << d.to_string() << "\n";
            }
            std::cerr << loaded.diagnostics.size() << " error(s); the policy was not accepted\n";
        }
        return kExitFailure;
    }
    if (o.json) {
        std::cout << engine_json(o.file, *loaded.engine).dump(2) << "\n";
        return kExitOk;
    }
    std::cout << "policy " << o.file << "\n"
              << "sha256 " << loaded.engine->sha256_hex() << "\n"
              << loaded.engine->render_matrix();
    return kExitOk;
}

}  // namespace

void add_policy_commands(CLI::App& root, Outcome& outcome) {
    CLI::App* policy = root.add_subcommand("policy", "Check a policy file (offline)");
    policy->require_subcommand(1);
    auto o = std::make_shared<PolicyCheckOptions>();
    CLI::App* check = policy->add_subcommand(
        "check", "Validate a policy file and print its permission matrix and SHA-256");
    check->add_option("FILE", o->file, "The policy file")->required();
    check->add_flag("--json", o->json,
                    "Print the result as JSON (permissions, principals, keys, sha256; or every "
                    "error)");
    check->footer(
        "On success prints the policy's SHA-256 (the value approval requests are bound to), the "
        "effective permission matrix (principal x action x key), the identities and the per-key "
        "rules, and exits 0. On failure prints every error as FILE:LINE:COLUMN: PATH: MESSAGE on "
        "stderr and exits 1; an unreadable FILE exits 8. See docs/policy.md.");
    check->callback([o, &outcome] { outcome.code = policy_check(*o); });
}

}  // namespace licentra::app
