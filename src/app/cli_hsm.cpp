// `licentra hsm keys|generate`: operator commands against a PKCS#11 token, for inspection and
// for the key ceremony that prepares a token before any daemon uses it. The PIN comes from the
// URI's pin-source file, never from the command line.
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "app/cli.hpp"
#include "app/wiring/audit_hsm.hpp"
#include "audit/entry.hpp"
#include "audit/pseudonym_epoch.hpp"
#include "audit/store.hpp"
#include "core/names.hpp"
#include "core/time.hpp"
#include "crypto/algorithm.hpp"
#include "hsm/hsm.hpp"
#include "keys/capabilities.hpp"
#include "policy/loader.hpp"

namespace licentra::app {

namespace {

constexpr const char* kUriHelp =
    "URI is an RFC 7512 token URI with the PIN file as pin-source, e.g.\n"
    "  pkcs11:token=licentra?pin-source=file:/var/lib/licentra/hsm/user.pin\n"
    "The module defaults to $LICENTRA_PKCS11_MODULE or SoftHSM2's module; for SoftHSM set\n"
    "SOFTHSM2_CONF. Exit codes: 0 done, 2 usage (bad URI), 9 HSM (module, token or operation "
    "failed). See docs/hsm.md.";

struct HsmOptions {
    std::string uri;
    std::string module;
    bool json = false;
    // keys
    std::string prefix = "licentra/";
    // generate
    std::string name;
    unsigned version = 0;
    std::string alg;
};

// --uri and --module: how every command that opens the token finds it.
void add_token_options(CLI::App* cmd, HsmOptions& o) {
    cmd->add_option("--uri", o.uri, "PKCS#11 token URI with pin-source=file:PATH")->required();
    cmd->add_option("--module", o.module,
                    "PKCS#11 module (default: $LICENTRA_PKCS11_MODULE or SoftHSM2)");
}

void add_common(CLI::App* cmd, HsmOptions& o) {
    add_token_options(cmd, o);
    cmd->add_flag("--json", o.json, "Print the result as JSON");
    cmd->footer(kUriHelp);
}

// Opens the token; on failure prints why and sets *code.
std::unique_ptr<hsm::Token> open_token(const HsmOptions& o, int* code) {
    std::string module_path = "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so";
    if (const char* env = std::getenv("LICENTRA_PKCS11_MODULE"); env != nullptr && *env != '\0') {
        module_path = env;
    }
    if (!o.module.empty()) module_path = o.module;
    std::string error;
    if (!check_readable(module_path, &error)) {
        std::cerr << "licentra: " << error << "\n";
        *code = kExitLocal;
        return nullptr;
    }
    auto module = hsm::Module::load(module_path);
    if (!module) {
        std::cerr << "licentra hsm: " << module.error().message << "\n";
        *code = kExitHsm;
        return nullptr;
    }
    hsm::TokenOptions options;
    options.uri = o.uri;
    options.pool_size = 1;
    auto token = hsm::Token::open(*module, options);
    if (!token) {
        std::cerr << "licentra hsm: " << token.error().message << "\n";
        *code = token.error().kind == core::ErrorKind::usage ? kExitUsage : kExitHsm;
        return nullptr;
    }
    return std::move(*token);
}

int hsm_keys(const HsmOptions& o) {
    int code = kExitOk;
    auto token = open_token(o, &code);
    if (!token) return code;
    auto keys = token->list_keys(o.prefix);
    if (!keys) {
        std::cerr << "licentra hsm: " << keys.error().message << "\n";
        return kExitHsm;
    }
    if (o.json) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& k : *keys) {
            list.push_back({{"label", k.label},
                            {"algorithm", k.algorithm ? nlohmann::json(std::string(
                                                            crypto::jws_name(*k.algorithm)))
                                                      : nlohmann::json(nullptr)},
                            {"id", k.id_hex},
                            {"private", k.has_private}});
        }
        std::cout << nlohmann::json{{"token", token->label()},
                                    {"serial", token->serial()},
                                    {"keys", std::move(list)}}
                         .dump(2)
                  << "\n";
        return kExitOk;
    }
    std::cout << "token " << token->label() << " (serial " << token->serial()
              << "): " << keys->size() << " key version(s)\n";
    for (const auto& k : *keys) {
        std::cout << "  " << k.label << "  "
                  << (k.algorithm ? std::string(crypto::jws_name(*k.algorithm)) : "unknown")
                  << "  id=" << k.id_hex << "  private=" << (k.has_private ? "yes" : "destroyed")
                  << "\n";
    }
    return kExitOk;
}

int hsm_generate(const HsmOptions& o) {
    const auto alg = crypto::algorithm_from_jws_name(o.alg);
    if (!alg) {
        std::cerr << "licentra hsm generate: unknown algorithm '" << o.alg << "'\n";
        return kExitUsage;
    }
    int code = kExitOk;
    auto token = open_token(o, &code);
    if (!token) return code;
    // A key ceremony tool: the pair it makes has no grant, no approval and no audit entry behind
    // it. A token a deployment uses holds the daemons' records (key versions, requests, the
    // audit anchor); keys there come from rotation requests, approved and audited.
    auto records = token->list_data("licentra/");
    if (!records) {
        std::cerr << "licentra hsm: " << records.error().message << "\n";
        return kExitHsm;
    }
    if (!records->empty()) {
        std::cerr << "licentra hsm generate: token " << token->label()
                  << " is used by a licentra-signd deployment (it holds " << records->size()
                  << " of the daemons' records); keys on it are created by rotation requests "
                     "(licentra keys rotate), approved and audited. hsm generate is a key "
                     "ceremony tool for a token no daemon has used yet.\n";
        return kExitConflict;
    }
    // The ceremony holds no grant: it runs before any policy governs the token (checked above).
    auto key = token->generate_key(keys::Capabilities::ceremony<hsm::KeyOp::generate>(o.name),
                                   o.version, *alg);
    if (!key) {
        std::cerr << "licentra hsm: " << key.error().message << "\n";
        return kExitHsm;
    }
    if (o.json) {
        std::cout << nlohmann::json{{"label", key->label},
                                    {"algorithm", std::string(crypto::jws_name(key->algorithm))},
                                    {"id", core::hex_encode(key->id)}}
                         .dump(2)
                  << "\n";
        return kExitOk;
    }
    std::cout << key->label << " " << crypto::jws_name(key->algorithm)
              << " id=" << core::hex_encode(key->id) << "\n";
    return kExitOk;
}

// The checkpoint the daemon of `origin` anchored on the token, printed as the signed note it
// is: what `licentra audit verify --trusted-checkpoint FILE` takes.
int audit_anchor(const HsmOptions& o, const std::string& origin) {
    if (!core::is_valid_log_origin(origin)) {
        std::cerr << "licentra audit anchor: --origin must be 1-255 printable ASCII characters\n";
        return kExitUsage;
    }
    int code = kExitOk;
    std::shared_ptr<hsm::Token> token = open_token(o, &code);
    if (!token) return code;
    wiring::HsmCheckpointAnchor anchor(token, origin);
    auto note = anchor.load();
    if (!note) {
        std::cerr << "licentra audit anchor: " << note.error().message << "\n";
        return kExitHsm;
    }
    if (!*note) {
        std::cerr << "licentra audit anchor: the token holds no checkpoint for origin " << origin
                  << " (" << anchor.label() << ")\n";
        return kExitFailure;
    }
    std::cout << **note;
    return kExitOk;
}

struct RetentionOptions {
    std::string policy;
    std::string dir;
    std::string now;
};

// Per pseudonym epoch (named by a key on the token or by an entry of the log): its period,
// whether its key still exists, and when it is (or was due to be) destroyed.
int audit_retention(const HsmOptions& o, const RetentionOptions& r) {
    auto loaded = policy::load_policy_file(r.policy);
    if (!loaded.ok()) {
        for (const auto& d : loaded.diagnostics) std::cerr << d.to_string() << "\n";
        return kExitFailure;
    }
    core::TimePoint now = core::Clock::now();
    if (!r.now.empty()) {
        auto t = core::parse_rfc3339_ms(r.now);
        if (!t) {
            std::cerr << "licentra audit retention: --now must be RFC 3339 UTC with milliseconds, "
                         "e.g. 2027-01-01T00:00:00.000Z\n";
            return kExitUsage;
        }
        now = *t;
    }
    std::set<std::string> in_log;  // epoch names entries carry
    if (!r.dir.empty()) {
        audit::Finding finding;
        auto scanned = audit::scan_log_entries(
            r.dir,
            [&](const audit::ScannedEntry& s) {
                if (s.entry != nullptr && s.entry->pseudonym_epoch) {
                    in_log.insert(*s.entry->pseudonym_epoch);
                }
            },
            &finding);
        if (!scanned) {
            std::cerr << "licentra audit retention: " << scanned.error().message << "\n";
            return kExitUnreadable;
        }
    }
    int code = kExitOk;
    std::shared_ptr<hsm::Token> token = open_token(o, &code);
    if (!token) return code;
    auto labels = token->list_hmac_keys(std::string(audit::kPseudonymLabelPrefix));
    if (!labels) {
        std::cerr << "licentra audit retention: " << labels.error().message << "\n";
        return kExitHsm;
    }
    std::map<std::string, audit::PseudonymEpoch> epochs;  // by name
    std::set<std::string> on_token;
    bool single_key = false;
    for (const auto& label : *labels) {
        if (auto e = audit::PseudonymEpoch::from_label(label)) {
            epochs.emplace(e->name(), *e);
            on_token.insert(e->name());
        } else if (label == audit::kPseudonymKeyLabel) {
            single_key = true;
        }
    }
    for (const auto& name : in_log) {
        if (auto e = audit::PseudonymEpoch::parse(name)) epochs.emplace(name, *e);
    }
    const auto& rules = loaded.engine->pseudonyms();
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [name, e] : epochs) {
        nlohmann::json j = {{"epoch", name},
                            {"start", core::format_rfc3339_ms(e.start())},
                            {"end", core::format_rfc3339_ms(e.end())},
                            {"key", on_token.count(name) != 0 ? "present" : "destroyed"},
                            {"in_log", in_log.count(name) != 0}};
        if (rules) j["destroy_at"] = core::format_rfc3339_ms(e.destroy_at(rules->retention));
        list.push_back(std::move(j));
    }
    nlohmann::json doc = {{"now", core::format_rfc3339_ms(now)},
                          {"epochs", std::move(list)},
                          {"single_key", single_key ? "present" : "absent"}};
    if (rules) {
        doc["epoch_seconds"] = rules->epoch.count();
        doc["retention_seconds"] = rules->retention.count();
    }
    if (o.json) {
        std::cout << doc.dump(2) << "\n";
        return kExitOk;
    }
    if (rules) {
        std::cout << "policy: epochs of " << rules->epoch.count() << " s, kept "
                  << rules->retention.count() << " s after they end\n";
    } else {
        std::cout << "policy: no pseudonym epochs (every pseudonym uses "
                  << audit::kPseudonymKeyLabel << ")\n";
    }
    std::cout << audit::kPseudonymKeyLabel << ": " << doc["single_key"].get<std::string>() << "\n";
    for (const auto& j : doc["epochs"]) {
        std::cout << j["epoch"].get<std::string>() << "  " << j["start"].get<std::string>()
                  << " .. " << j["end"].get<std::string>() << "  key "
                  << j["key"].get<std::string>();
        if (j.contains("destroy_at")) {
            std::cout << (j["key"] == "present" ? "  destroyed at " : "  due ")
                      << j["destroy_at"].get<std::string>();
        }
        std::cout << "\n";
    }
    return kExitOk;
}

}  // namespace

void add_audit_retention(CLI::App& audit, Outcome& outcome) {
    auto o = std::make_shared<HsmOptions>();
    auto r = std::make_shared<RetentionOptions>();
    CLI::App* cmd = audit.add_subcommand(
        "retention",
        "Per pseudonym epoch: its period, whether its HSM key still exists, and when it is "
        "destroyed");
    add_common(cmd, *o);
    cmd->add_option("--policy", r->policy, "The policy file (its pseudonyms section)")->required();
    cmd->add_option("--dir", r->dir, "Audit log directory: also list the epochs its entries name");
    cmd->add_option("--now", r->now, "Report as of this instant (RFC 3339 UTC, milliseconds)");
    cmd->callback([o, r, &outcome] { outcome.code = audit_retention(*o, *r); });
}

void add_audit_anchor(CLI::App& audit, Outcome& outcome) {
    auto o = std::make_shared<HsmOptions>();
    auto origin = std::make_shared<std::string>();
    CLI::App* cmd = audit.add_subcommand(
        "anchor",
        "Print the checkpoint a daemon anchored on the HSM token, as a signed note for "
        "audit verify --trusted-checkpoint");
    add_token_options(cmd, *o);
    cmd->add_option("--origin", *origin, "The log's checkpoint origin (audit.origin)")->required();
    cmd->footer(std::string(kUriHelp) + " 1: no checkpoint is anchored for that origin.");
    cmd->callback([o, origin, &outcome] { outcome.code = audit_anchor(*o, *origin); });
}

void add_hsm_commands(CLI::App& root, Outcome& outcome) {
    CLI::App* hsm = root.add_subcommand(
        "hsm", "List or generate key versions directly on a PKCS#11 token (operators)");
    hsm->require_subcommand(1);
    hsm->footer(kUriHelp);

    auto keys_o = std::make_shared<HsmOptions>();
    CLI::App* keys = hsm->add_subcommand(
        "keys", "List key versions (label, algorithm, CKA_ID, whether the private key is present)");
    add_common(keys, *keys_o);
    keys->add_option("--prefix", keys_o->prefix, "Label prefix to list")->capture_default_str();
    keys->callback([keys_o, &outcome] { outcome.code = hsm_keys(*keys_o); });

    auto gen_o = std::make_shared<HsmOptions>();
    CLI::App* gen = hsm->add_subcommand(
        "generate",
        "Key ceremony: create a sign-only key pair licentra/NAME/vN on a token no daemon has "
        "used yet (refused, exit 7, on a token holding a deployment's records)");
    add_common(gen, *gen_o);
    gen->add_option("--name", gen_o->name, "Key name")->required();
    gen->add_option("--version", gen_o->version, "Key version, a positive integer")
        ->required()
        ->check(CLI::Range(1U, 0x7fffffffU));
    gen->add_option("--alg", gen_o->alg, "Algorithm")
        ->required()
        ->check(CLI::IsMember({"EdDSA", "ES256", "ES384", "PS256"}));
    gen->callback([gen_o, &outcome] { outcome.code = hsm_generate(*gen_o); });
}

}  // namespace licentra::app
