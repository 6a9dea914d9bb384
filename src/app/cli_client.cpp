// Client commands of `licentra`: talk to licentra-signd over mutual TLS.
//
//   licentra token sign --key K --claims FILE|- [--json]
//   licentra token verify TOKEN|- --jwks FILE [--json]        (offline, cli_verify.cpp)
//   licentra jwks [--json]
//   licentra keys list [--json]
//   licentra keys show NAME [--json]
//   licentra keys rotate NAME | retire NAME --version N | destroy NAME --version N [--force]
//   licentra requests list | show ID | approve ID [--digest HEX] | reject ID
//
// Connection: --server URL, --cert FILE, --key FILE (client private key), --ca FILE, or the
// environment variables LICENTRA_SERVER, LICENTRA_CERT, LICENTRA_KEY, LICENTRA_CA.
// Note: in `token sign`, --key names the signing key; the client private key is then given by
// --client-key or LICENTRA_KEY.
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "app/cli.hpp"
#include "net/client.hpp"

namespace licentra::app {
namespace {

const std::set<std::string> kConnectionOptions = {"--server", "--cert", "--key", "--ca",
                                                  "--client-key"};

std::string env_or(const char* name, const std::string& fallback = {}) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::string(v) : fallback;
}

struct Connection {
    std::string server;
    std::string cert;
    std::string key;
    std::string ca;
};

// `key_is_client_key`: whether --key means the client private key (every command but
// `token sign`, where --key is the signing key's name).
Connection connection_from(const Args& args, bool key_is_client_key) {
    Connection c;
    c.server = args.get("--server").value_or(env_or("LICENTRA_SERVER", "https://127.0.0.1:8443"));
    c.cert = args.get("--cert").value_or(env_or("LICENTRA_CERT"));
    if (auto k = args.get("--client-key")) {
        c.key = *k;
    } else if (key_is_client_key && args.get("--key")) {
        c.key = *args.get("--key");
    } else {
        c.key = env_or("LICENTRA_KEY");
    }
    c.ca = args.get("--ca").value_or(env_or("LICENTRA_CA"));
    return c;
}

struct Reply {
    unsigned status = 0;
    std::string body;
    std::string content_type;
};

// Sends one request. On a transport failure prints the error and returns nullopt.
std::optional<Reply> call(const Connection& c, std::string_view method, std::string_view target,
                          std::string_view body, int* exit_code) {
    if (c.cert.empty() || c.key.empty() || c.ca.empty()) {
        std::cerr << "licentra: --cert, --key (or --client-key) and --ca are required "
                     "(or LICENTRA_CERT, LICENTRA_KEY, LICENTRA_CA)\n";
        *exit_code = kExitUsage;
        return std::nullopt;
    }
    auto endpoint = net::parse_server_url(c.server);
    if (!endpoint) {
        std::cerr << "licentra: " << endpoint.error().message << '\n';
        *exit_code = kExitUsage;
        return std::nullopt;
    }
    net::ClientOptions options;
    options.server = *endpoint;
    options.tls = {c.ca, c.cert, c.key};
    auto client = net::Client::create(options);
    if (!client) {
        std::cerr << "licentra: " << client.error().message << '\n';
        *exit_code = kExitUsage;
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

// Prints a problem+json answer and returns the exit code for it.
int report_problem(const Reply& r, bool json) {
    if (json) {
        std::cout << r.body << '\n';
    } else {
        nlohmann::json p = nlohmann::json::parse(r.body, nullptr, false);
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
    return r.status >= 500 ? kExitUnavailable : kExitFailure;
}

std::optional<std::string> read_input(const std::string& path) {
    if (path == "-") {
        return std::string(std::istreambuf_iterator<char>(std::cin), {});
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), {});
}

int token_sign(const std::vector<std::string>& rest) {
    std::set<std::string> values = kConnectionOptions;
    values.insert("--claims");
    Args args(rest, values, {"--json"});
    if (!args.ok()) {
        std::cerr << "licentra token sign: " << args.error() << '\n';
        return kExitUsage;
    }
    auto key = args.get("--key");
    auto claims_path = args.get("--claims");
    if (!key || !claims_path || !args.positional().empty()) {
        std::cerr << "usage: licentra token sign --key KEY --claims FILE|- [--json] "
                     "[--server URL --cert FILE --client-key FILE --ca FILE]\n";
        return kExitUsage;
    }
    auto text = read_input(*claims_path);
    if (!text) {
        std::cerr << "licentra token sign: cannot read " << *claims_path << '\n';
        return kExitUsage;
    }
    nlohmann::json claims = nlohmann::json::parse(*text, nullptr, false);
    if (claims.is_discarded() || !claims.is_object()) {
        std::cerr << "licentra token sign: the claims must be a JSON object\n";
        return kExitUsage;
    }
    nlohmann::json body = {{"key", *key}, {"claims", claims}};
    int code = kExitOk;
    auto r = call(connection_from(args, false), "POST", "/v1/tokens", body.dump(), &code);
    if (!r) return code;
    if (r->status != 201) return report_problem(*r, args.has("--json"));
    if (args.has("--json")) {
        std::cout << r->body << '\n';
        return kExitOk;
    }
    nlohmann::json out = nlohmann::json::parse(r->body, nullptr, false);
    if (!out.is_object() || !out.contains("token")) {
        std::cerr << "licentra token sign: malformed answer from the server\n";
        return kExitFailure;
    }
    std::cout << out["token"].get<std::string>() << '\n';
    std::cerr << "kid " << out.value("kid", "") << ", audit index "
              << out.value("audit_index", std::uint64_t{0}) << '\n';
    return kExitOk;
}

int get_json(const std::vector<std::string>& rest, const std::string& target,
             const std::function<void(const nlohmann::json&)>& human) {
    Args args(rest, kConnectionOptions, {"--json"});
    if (!args.ok() || !args.positional().empty()) {
        std::cerr << "licentra: " << (args.ok() ? "unexpected argument" : args.error()) << '\n';
        return kExitUsage;
    }
    int code = kExitOk;
    auto r = call(connection_from(args, true), "GET", target, {}, &code);
    if (!r) return code;
    if (r->status != 200) return report_problem(*r, args.has("--json"));
    nlohmann::json doc = nlohmann::json::parse(r->body, nullptr, false);
    if (doc.is_discarded()) {
        std::cerr << "licentra: malformed answer from the server\n";
        return kExitFailure;
    }
    if (args.has("--json")) {
        std::cout << r->body << '\n';
    } else {
        human(doc);
    }
    return kExitOk;
}

void print_request(const nlohmann::json& r) {
    std::cout << "request " << r.value("id", "") << ": " << r.value("operation", "") << ' '
              << r.value("key", "");
    if (r.contains("version")) std::cout << " v" << r["version"];
    std::cout << ", " << r.value("state", "") << ", "
              << r.value("approvals", nlohmann::json::array()).size() << " of "
              << r.value("quorum", 0) << " approvals, requested by " << r.value("requester", "")
              << ", expires " << r.value("expires", "") << '\n'
              << "  digest " << r.value("digest", "") << '\n';
    if (r.value("executed", false) && r.contains("result")) {
        const auto& res = r["result"];
        std::cout << "  executed: version " << res.value("version", 0) << " is "
                  << res.value("state", "") << ' ' << res.value("kid", "") << '\n';
    }
}

// POST with an optional JSON body; prints a request view.
int post_request(
    const std::vector<std::string>& rest, const std::set<std::string>& extra_values,
    const std::set<std::string>& extra_flags, std::size_t positionals,
    const std::function<std::optional<std::pair<std::string, nlohmann::json>>(const Args&)>&
        build) {
    std::set<std::string> values = kConnectionOptions;
    values.insert(extra_values.begin(), extra_values.end());
    std::set<std::string> flags = {"--json"};
    flags.insert(extra_flags.begin(), extra_flags.end());
    Args args(rest, values, flags);
    if (!args.ok() || args.positional().size() != positionals) {
        std::cerr << "licentra: " << (args.ok() ? "wrong number of arguments" : args.error())
                  << '\n';
        return kExitUsage;
    }
    auto target = build(args);
    if (!target) return kExitUsage;
    int code = kExitOk;
    auto r = call(connection_from(args, true), "POST", target->first,
                  target->second.empty() ? std::string() : target->second.dump(), &code);
    if (!r) return code;
    if (r->status >= 300) return report_problem(*r, args.has("--json"));
    nlohmann::json doc = nlohmann::json::parse(r->body, nullptr, false);
    if (args.has("--json") || doc.is_discarded()) {
        std::cout << r->body << '\n';
    } else {
        print_request(doc);
    }
    return kExitOk;
}

std::optional<unsigned long> version_option(const Args& args) {
    auto v = args.get("--version");
    if (!v || v->empty() || v->find_first_not_of("0123456789") != std::string::npos ||
        v->size() > 9) {
        std::cerr << "licentra: --version N is required (a positive number)\n";
        return std::nullopt;
    }
    return std::stoul(*v);
}

void print_key(const nlohmann::json& key) {
    std::cout << key.value("name", "") << " (" << key.value("algorithm", "") << ")\n";
    for (const auto& v : key.value("versions", nlohmann::json::array())) {
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

constexpr const char* kUsage = R"(usage:
  licentra token sign --key KEY --claims FILE|- [--json]
  licentra token verify TOKEN|- --jwks FILE [--json]
  licentra jwks [--json]
  licentra keys list [--json]
  licentra keys show NAME [--json]
  licentra keys rotate NAME [--json]
  licentra keys retire NAME --version N [--json]
  licentra keys destroy NAME --version N [--force] [--json]
  licentra requests list [--json]
  licentra requests show ID [--json]
  licentra requests approve ID [--digest HEX] [--json]
  licentra requests reject ID [--json]
connection: --server URL --cert FILE --key FILE --ca FILE (token sign: --client-key FILE),
or LICENTRA_SERVER, LICENTRA_CERT, LICENTRA_KEY, LICENTRA_CA
)";

}  // namespace

int cli_client(const std::vector<std::string>& args) {
    const std::string& family = args.at(0);
    std::string sub = args.size() > 1 ? args[1] : "";
    std::vector<std::string> rest(args.begin() + (args.size() > 1 ? 2 : 1), args.end());
    if (sub == "--help" || sub == "-h") {
        std::cout << kUsage;
        return kExitOk;
    }
    if (family == "token" && sub == "sign") return token_sign(rest);
    if (family == "token" && sub == "verify") {
        return cli_token_verify(std::vector<std::string>(args.begin() + 1, args.end()));
    }
    if (family == "jwks") {
        std::vector<std::string> all(args.begin() + 1, args.end());
        return get_json(all, "/.well-known/jwks.json",
                        [](const nlohmann::json& doc) { std::cout << doc.dump(2) << '\n'; });
    }
    if (family == "keys" && sub == "list") {
        return get_json(rest, "/v1/keys", [](const nlohmann::json& doc) {
            for (const auto& k : doc.value("keys", nlohmann::json::array())) print_key(k);
        });
    }
    if (family == "keys" && sub == "show" && !rest.empty() && rest[0].rfind("--", 0) != 0) {
        std::string name = rest[0];
        rest.erase(rest.begin());
        return get_json(rest, "/v1/keys/" + name, print_key);
    }
    if (family == "keys" && sub == "rotate") {
        return post_request(rest, {}, {}, 1, [](const Args& a) {
            return std::optional<std::pair<std::string, nlohmann::json>>(
                {"/v1/keys/" + a.positional()[0] + "/rotations", nlohmann::json()});
        });
    }
    if (family == "keys" && (sub == "retire" || sub == "destroy")) {
        return post_request(
            rest, {"--version"},
            sub == "destroy" ? std::set<std::string>{"--force"} : std::set<std::string>{}, 1,
            [&](const Args& a) -> std::optional<std::pair<std::string, nlohmann::json>> {
                auto v = version_option(a);
                if (!v) return std::nullopt;
                nlohmann::json body;
                if (a.has("--force")) body = {{"force", true}};
                return std::make_pair(
                    "/v1/keys/" + a.positional()[0] + "/versions/" + std::to_string(*v) + "/" + sub,
                    body);
            });
    }
    if (family == "requests" && sub == "list") {
        return get_json(rest, "/v1/requests", [](const nlohmann::json& doc) {
            const auto& list = doc.value("requests", nlohmann::json::array());
            if (list.empty()) std::cout << "no pending requests\n";
            for (const auto& r : list) print_request(r);
        });
    }
    if (family == "requests" && sub == "show" && !rest.empty() && rest[0].rfind("--", 0) != 0) {
        std::string id = rest[0];
        rest.erase(rest.begin());
        return get_json(rest, "/v1/requests/" + id, print_request);
    }
    if (family == "requests" && (sub == "approve" || sub == "reject")) {
        return post_request(
            rest, sub == "approve" ? std::set<std::string>{"--digest"} : std::set<std::string>{},
            {}, 1, [&](const Args& a) {
                nlohmann::json body;
                if (auto d = a.get("--digest")) body = {{"digest", *d}};
                return std::optional<std::pair<std::string, nlohmann::json>>(
                    {"/v1/requests/" + a.positional()[0] + "/" + sub, body});
            });
    }
    std::cerr << kUsage;
    return kExitUsage;
}

}  // namespace licentra::app
