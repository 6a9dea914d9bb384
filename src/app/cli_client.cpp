// Client commands of `licentra`: talk to licentra-signd over mutual TLS.
//
//   licentra token sign --key K --claims FILE|- [--json]
//   licentra jwks [--json]
//   licentra keys list [--json]
//   licentra keys show NAME [--json]
//   licentra keys rotate NAME | retire NAME --version N | destroy NAME --version N [--force]
//   licentra requests list | show ID | approve ID [--digest HEX] | reject ID
//
// Connection settings, lowest to highest precedence: the profile file (--profile NAME or
// LICENTRA_PROFILE, else the profile named "default"), the environment variables
// LICENTRA_SERVER, LICENTRA_CERT, LICENTRA_KEY, LICENTRA_CA, then --server, --cert, --key, --ca.
// In `token sign`, --key names the signing key; the client private key is then --client-key.
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/cli.hpp"
#include "net/client.hpp"

namespace licentra::app {
namespace {

using nlohmann::json;

constexpr const char* kDefaultServer = "https://127.0.0.1:8443";

constexpr const char* kConnectionHelp =
    "Connection: --server, --cert, --key (token sign: --client-key), --ca override the "
    "environment variables LICENTRA_SERVER, LICENTRA_CERT, LICENTRA_KEY, LICENTRA_CA, which "
    "override the profile file $XDG_CONFIG_HOME/licentra/config.yaml (default "
    "~/.config/licentra/config.yaml; --profile NAME or LICENTRA_PROFILE, else the profile "
    "'default'). The server defaults to https://127.0.0.1:8443.\n"
    "Exit codes: 0 ok, 1 refused (4xx), 2 usage, 5 unreachable or 5xx, 6 denied (401, 403), "
    "7 conflict (409), 8 local file, credentials or profile file. See docs/cli.md.";

struct ConnectionFlags {
    std::string server;
    std::string cert;
    std::string key;
    std::string ca;
    std::string profile;
};

// Every client command's options: the connection, --json, and the command's own.
struct ClientOptions {
    ConnectionFlags connection;
    bool json = false;
    std::string name;  // keys show/rotate/retire/destroy: NAME; requests show/...: ID
    unsigned version = 0;
    bool force = false;
    std::string digest;
    std::string signing_key;  // token sign --key
    std::string claims;       // token sign --claims
};

// `key_is_client_key`: whether --key means the client private key (every command but
// `token sign`, where --key is the signing key's name and --client-key the client key).
void add_connection_options(CLI::App* cmd, ClientOptions& o, bool key_is_client_key) {
    cmd->add_option("--server", o.connection.server,
                    "Daemon URL, https://HOST[:PORT] (env LICENTRA_SERVER)");
    cmd->add_option("--cert", o.connection.cert, "Client certificate, PEM (env LICENTRA_CERT)");
    if (key_is_client_key) {
        cmd->add_option("--key,--client-key", o.connection.key,
                        "Client private key, PEM (env LICENTRA_KEY)");
    } else {
        cmd->add_option("--client-key", o.connection.key,
                        "Client private key, PEM (env LICENTRA_KEY)");
    }
    cmd->add_option("--ca", o.connection.ca,
                    "CA certificate(s) that signed the daemon's certificate (env LICENTRA_CA)");
    cmd->add_option("--profile", o.connection.profile,
                    "Profile in the profile file (env LICENTRA_PROFILE; default: 'default')");
    cmd->add_flag("--json", o.json, "Print the daemon's answer as JSON");
    cmd->footer(kConnectionHelp);
}

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::string(v) : std::string();
}

// Profile file < environment < flags. Prints the error and returns false on failure.
bool resolve_connection(const ConnectionFlags& f, Connection* c, int* code) {
    std::string profile = f.profile.empty() ? env("LICENTRA_PROFILE") : f.profile;
    const std::string file = profile_file_path();
    Connection p;
    if (!file.empty()) {
        std::string error;
        if (!load_profile(file, profile, &p, &error)) {
            std::cerr << "licentra: " << error << '\n';
            *code = kExitLocal;
            return false;
        }
    } else if (!profile.empty()) {
        std::cerr << "licentra: profile " << profile
                  << " named, but neither XDG_CONFIG_HOME nor HOME is set\n";
        *code = kExitLocal;
        return false;
    }
    auto pick = [](const std::string& flag, const char* env_name, const std::string& from_file) {
        if (!flag.empty()) return flag;
        std::string e = env(env_name);
        if (!e.empty()) return e;
        return from_file;
    };
    c->server = pick(f.server, "LICENTRA_SERVER", p.server);
    if (c->server.empty()) c->server = kDefaultServer;
    c->cert = pick(f.cert, "LICENTRA_CERT", p.cert);
    c->key = pick(f.key, "LICENTRA_KEY", p.key);
    c->ca = pick(f.ca, "LICENTRA_CA", p.ca);
    return true;
}

struct Reply {
    unsigned status = 0;
    std::string body;
    std::string content_type;
};

// Sends one request. On a failure before an answer prints the error and returns nullopt.
std::optional<Reply> call(const ConnectionFlags& flags, std::string_view method,
                          std::string_view target, std::string_view body, int* exit_code) {
    Connection c;
    if (!resolve_connection(flags, &c, exit_code)) return std::nullopt;
    if (c.cert.empty() || c.key.empty() || c.ca.empty()) {
        std::cerr << "licentra: --cert, --key (or --client-key) and --ca are required "
                     "(or LICENTRA_CERT, LICENTRA_KEY, LICENTRA_CA, or a profile)\n";
        *exit_code = kExitUsage;
        return std::nullopt;
    }
    auto endpoint = net::parse_server_url(c.server);
    if (!endpoint) {
        std::cerr << "licentra: " << endpoint.error().message << '\n';
        *exit_code = kExitUsage;
        return std::nullopt;
    }
    for (const std::string* file : {&c.cert, &c.key, &c.ca}) {
        std::string error;
        if (!check_readable(*file, &error)) {
            std::cerr << "licentra: " << error << '\n';
            *exit_code = kExitLocal;
            return std::nullopt;
        }
    }
    net::ClientOptions options;
    options.server = *endpoint;
    options.tls = {c.ca, c.cert, c.key};
    auto client = net::Client::create(options);
    if (!client) {
        std::cerr << "licentra: " << client.error().message << '\n';
        *exit_code = kExitLocal;
        return std::nullopt;
    }
    auto resp = client->request(method, target, body, body.empty() ? "" : "application/json");
    if (!resp) {
        std::cerr << "licentra: " << c.server << ": " << resp.error().message << '\n';
        *exit_code = kExitUnavailable;
        return std::nullopt;
    }
    return Reply{resp->status, resp->body, resp->content_type};
}

int status_exit_code(unsigned status) {
    if (status >= 500) return kExitUnavailable;
    if (status == 401 || status == 403) return kExitDenied;
    if (status == 409) return kExitConflict;
    return kExitFailure;
}

// Prints a problem+json answer and returns the exit code for it.
int report_problem(const Reply& r, bool as_json) {
    if (as_json) {
        std::cout << r.body << '\n';
    } else {
        json p = json::parse(r.body, nullptr, false);
        if (p.is_object()) {
            std::cerr << "licentra: " << r.status << ' ' << p.value("title", "") << ": "
                      << p.value("detail", "") << '\n';
            if (auto v = p.find("violations"); v != p.end() && v->is_array()) {
                for (const auto& item : *v) {
                    std::cerr << "  " << item.value("claim", "") << ": "
                              << item.value("message", "") << " (" << item.value("code", "")
                              << ")\n";
                }
            }
            if (auto id = p.find("request_id"); id != p.end() && id->is_string()) {
                std::cerr << "  request id " << id->get<std::string>() << '\n';
            }
        } else {
            std::cerr << "licentra: HTTP " << r.status << '\n';
        }
    }
    return status_exit_code(r.status);
}

int token_sign(const ClientOptions& o) {
    std::string error;
    auto text = read_local_file(o.claims, &error, 1024 * 1024, true);
    if (!text) {
        std::cerr << "licentra: " << error << '\n';
        return kExitLocal;
    }
    json claims = json::parse(*text, nullptr, false);
    if (claims.is_discarded() || !claims.is_object()) {
        std::cerr << "licentra: " << (o.claims == "-" ? std::string("standard input") : o.claims)
                  << ": the claims must be a JSON object\n";
        return kExitLocal;
    }
    json body = {{"key", o.signing_key}, {"claims", claims}};
    int code = kExitOk;
    auto r = call(o.connection, "POST", "/v1/tokens", body.dump(), &code);
    if (!r) return code;
    if (r->status != 201) return report_problem(*r, o.json);
    if (o.json) {
        std::cout << r->body << '\n';
        return kExitOk;
    }
    json out = json::parse(r->body, nullptr, false);
    if (!out.is_object() || !out.contains("token")) {
        std::cerr << "licentra token sign: malformed answer from the server\n";
        return kExitFailure;
    }
    std::cout << out["token"].get<std::string>() << '\n';
    std::cerr << "kid " << out.value("kid", "") << ", audit index "
              << out.value("audit_index", std::uint64_t{0}) << '\n';
    return kExitOk;
}

// GET target; prints the answer as JSON (after `to_json`) or with `human`.
int get_json(const ClientOptions& o, const std::string& target,
             const std::function<void(const json&)>& human,
             const std::function<json(json)>& to_json = {}) {
    int code = kExitOk;
    auto r = call(o.connection, "GET", target, {}, &code);
    if (!r) return code;
    if (r->status != 200) return report_problem(*r, o.json);
    json doc = json::parse(r->body, nullptr, false);
    if (doc.is_discarded()) {
        std::cerr << "licentra: malformed answer from the server\n";
        return kExitFailure;
    }
    if (o.json) {
        std::cout << (to_json ? to_json(std::move(doc)) : doc).dump(2) << '\n';
    } else {
        human(doc);
    }
    return kExitOk;
}

bool request_force(const json& r) {
    const json params = r.value("params", json::object());
    return params.is_object() && params.value("force", false);
}

// Parameters other than force, as "name=value" (values in JSON form).
std::string other_params(const json& r) {
    const json params = r.value("params", json::object());
    std::string out;
    if (!params.is_object()) return out;
    for (auto it = params.begin(); it != params.end(); ++it) {
        if (it.key() == "force") continue;
        out += (out.empty() ? "" : ",") + it.key() + "=" +
               (it->is_string() ? it->get<std::string>() : it->dump());
    }
    return out;
}

// A request as JSON for --json: the daemon's view plus "force" spelled out.
json request_view(json r) {
    if (r.is_object()) r["force"] = request_force(r);
    return r;
}

void print_request(const json& r) {
    std::cout << "request " << r.value("id", "") << ": " << r.value("operation", "") << ' '
              << r.value("key", "");
    if (r.contains("version")) std::cout << " v" << r["version"];
    if (request_force(r)) std::cout << " (force)";
    std::cout << ", " << r.value("state", "") << ", " << r.value("approvals", json::array()).size()
              << " of " << r.value("quorum", 0) << " approvals, requested by "
              << r.value("requester", "") << ", expires " << r.value("expires", "") << '\n'
              << "  force " << (request_force(r) ? "yes" : "no");
    if (const std::string other = other_params(r); !other.empty()) {
        std::cout << ", params " << other;
    }
    std::cout << '\n' << "  digest " << r.value("digest", "") << '\n';
    for (const auto& a : r.value("approvals", json::array())) {
        std::cout << "  approved by " << a.value("principal", "") << " at " << a.value("at", "")
                  << '\n';
    }
    if (r.value("executed", false) && r.contains("result")) {
        const auto& res = r["result"];
        std::cout << "  executed: version " << res.value("version", 0) << " is "
                  << res.value("state", "") << ' ' << res.value("kid", "") << '\n';
    }
}

// `requests list`: one row per request with everything an approver must see.
void print_request_table(const json& list) {
    std::vector<std::vector<std::string>> rows = {{"ID", "OPERATION", "KEY", "VERSION", "FORCE",
                                                   "PARAMS", "STATE", "APPROVALS", "REQUESTER",
                                                   "EXPIRES", "DIGEST"}};
    for (const auto& r : list) {
        std::string version = "-";
        if (r.contains("version")) version = r["version"].dump();
        const std::string other = other_params(r);
        rows.push_back({r.value("id", ""), r.value("operation", ""), r.value("key", ""), version,
                        request_force(r) ? "yes" : "no", other.empty() ? "-" : other,
                        r.value("state", ""),
                        std::to_string(r.value("approvals", json::array()).size()) + "/" +
                            std::to_string(r.value("quorum", 0)),
                        r.value("requester", ""), r.value("expires", ""), r.value("digest", "")});
    }
    std::vector<std::size_t> width(rows.front().size(), 0);
    for (const auto& row : rows) {
        for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
        }
        std::cout << line << '\n';
    }
}

// POST with an optional JSON body; prints a request view.
int post_request(const ClientOptions& o, const std::string& target, const json& body) {
    int code = kExitOk;
    auto r = call(o.connection, "POST", target, body.empty() ? std::string() : body.dump(), &code);
    if (!r) return code;
    if (r->status >= 300) return report_problem(*r, o.json);
    json doc = json::parse(r->body, nullptr, false);
    if (doc.is_discarded()) {
        std::cout << r->body << '\n';
    } else if (o.json) {
        std::cout << request_view(std::move(doc)).dump(2) << '\n';
    } else {
        print_request(doc);
    }
    return kExitOk;
}

void print_key(const json& key) {
    std::cout << key.value("name", "") << " (" << key.value("algorithm", "") << ")\n";
    for (const auto& v : key.value("versions", json::array())) {
        std::cout << "  v" << std::left << std::setw(4) << v.value("version", 0) << std::setw(11)
                  << v.value("state", "") << ' ' << v.value("kid", "") << "  created "
                  << v.value("created", "");
        if (v.contains("activate_at")) {
            std::cout << "  activates " << v["activate_at"].get<std::string>();
        }
        if (v.contains("verify_until")) {
            std::cout << "  verify until " << v["verify_until"].get<std::string>();
        }
        std::cout << '\n';
    }
}

// Adds a client command whose action is run(options).
CLI::App* client_command(CLI::App& parent, const std::string& name, const std::string& help,
                         Outcome& outcome, std::shared_ptr<ClientOptions> o,
                         std::function<int(const ClientOptions&)> run,
                         bool key_is_client_key = true) {
    CLI::App* cmd = parent.add_subcommand(name, help);
    add_connection_options(cmd, *o, key_is_client_key);
    cmd->callback([o, run = std::move(run), &outcome] { outcome.code = run(*o); });
    return cmd;
}

}  // namespace

void add_client_commands(CLI::App& root, CLI::App& token, Outcome& outcome) {
    // token sign
    {
        auto o = std::make_shared<ClientOptions>();
        CLI::App* sign = client_command(token, "sign", "Ask the daemon to sign a license token",
                                        outcome, o, token_sign, false);
        sign->add_option("--key", o->signing_key, "Name of the signing key in the policy")
            ->required();
        sign->add_option("--claims", o->claims, "Claims file (a JSON object), or - for stdin")
            ->required();
        sign->footer(std::string("Prints the token on stdout, its kid and audit index on "
                                 "stderr; --json prints the whole answer.\n") +
                     kConnectionHelp);
    }
    // jwks
    {
        auto o = std::make_shared<ClientOptions>();
        client_command(root, "jwks", "Fetch the daemon's public keys (JWK Set)", outcome, o,
                       [](const ClientOptions& opt) {
                           return get_json(opt, "/.well-known/jwks.json", [](const json& doc) {
                               std::cout << doc.dump(2) << '\n';
                           });
                       });
    }
    // keys
    CLI::App* keys =
        root.add_subcommand("keys", "List keys; request rotation, retirement, destruction");
    keys->require_subcommand(1);
    {
        auto o = std::make_shared<ClientOptions>();
        client_command(*keys, "list", "List keys with their versions, states, dates and kids",
                       outcome, o, [](const ClientOptions& opt) {
                           return get_json(opt, "/v1/keys", [](const json& doc) {
                               for (const auto& k : doc.value("keys", json::array())) print_key(k);
                           });
                       });
    }
    {
        auto o = std::make_shared<ClientOptions>();
        CLI::App* show = client_command(*keys, "show", "Show one key's versions", outcome, o,
                                        [](const ClientOptions& opt) {
                                            return get_json(opt, "/v1/keys/" + opt.name, print_key);
                                        });
        show->add_option("NAME", o->name, "Key name")->required();
    }
    {
        auto o = std::make_shared<ClientOptions>();
        CLI::App* rotate = client_command(
            *keys, "rotate", "Request a rotation (a new version) of a key", outcome, o,
            [](const ClientOptions& opt) {
                return post_request(opt, "/v1/keys/" + opt.name + "/rotations", json());
            });
        rotate->add_option("NAME", o->name, "Key name")->required();
    }
    for (const std::string op : {"retire", "destroy"}) {
        auto o = std::make_shared<ClientOptions>();
        CLI::App* cmd = client_command(
            *keys, op,
            op == "retire" ? "Request the retirement of a key version"
                           : "Request the destruction of a key version's private key",
            outcome, o, [op](const ClientOptions& opt) {
                json body;
                if (opt.force) body = {{"force", true}};
                return post_request(
                    opt,
                    "/v1/keys/" + opt.name + "/versions/" + std::to_string(opt.version) + "/" + op,
                    body);
            });
        cmd->add_option("NAME", o->name, "Key name")->required();
        cmd->add_option("--version", o->version, "Key version, a positive integer")
            ->required()
            ->check(CLI::Range(1U, 999999999U));
        if (op == "destroy") {
            cmd->add_flag("--force", o->force,
                          "Destroy even if tokens signed by the version may still be verified");
        }
    }
    // requests
    CLI::App* requests =
        root.add_subcommand("requests", "List, show, approve or reject key requests");
    requests->require_subcommand(1);
    {
        auto o = std::make_shared<ClientOptions>();
        client_command(
            *requests, "list",
            "List requests: operation, key, version, force and every parameter, state, approvals",
            outcome, o, [](const ClientOptions& opt) {
                return get_json(
                    opt, "/v1/requests",
                    [](const json& doc) {
                        const json list = doc.value("requests", json::array());
                        if (list.empty()) {
                            std::cout << "no pending requests\n";
                            return;
                        }
                        print_request_table(list);
                    },
                    [](json doc) {
                        if (doc.is_object() && doc.contains("requests") &&
                            doc["requests"].is_array()) {
                            for (auto& r : doc["requests"]) r = request_view(std::move(r));
                        }
                        return doc;
                    });
            });
    }
    {
        auto o = std::make_shared<ClientOptions>();
        CLI::App* show = client_command(
            *requests, "show", "Show one request", outcome, o, [](const ClientOptions& opt) {
                return get_json(opt, "/v1/requests/" + opt.name, print_request, request_view);
            });
        show->add_option("ID", o->name, "Request id")->required();
    }
    for (const std::string op : {"approve", "reject"}) {
        auto o = std::make_shared<ClientOptions>();
        CLI::App* cmd = client_command(
            *requests, op, op == "approve" ? "Approve a request" : "Reject a request", outcome, o,
            [op](const ClientOptions& opt) {
                json body;
                if (!opt.digest.empty()) body = {{"digest", opt.digest}};
                return post_request(opt, "/v1/requests/" + opt.name + "/" + op, body);
            });
        cmd->add_option("ID", o->name, "Request id")->required();
        if (op == "approve") {
            cmd->add_option("--digest", o->digest,
                            "Approve only if the request's digest is this (hex), as shown by "
                            "'requests show'");
        }
    }
}

}  // namespace licentra::app
