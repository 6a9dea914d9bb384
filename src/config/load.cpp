// Strict YAML loading on the bounded, alias-free tree of yaml/document.hpp (the policy loader's
// reader too): anchors, aliases, merge keys, tags, several documents and hostile sizes are
// refused there, with their line, before any key is looked at.
#include <algorithm>
#include <charconv>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "config/config.hpp"
#include "core/time.hpp"
#include "hsm/hsm.hpp"
#include "yaml/document.hpp"

namespace licentra::config {

namespace {

namespace fs = std::filesystem;

using Node = yaml::Node;
using Children = std::map<std::string, const Node*>;

class Parser {
  public:
    Parser(std::string file, fs::path base_dir, Config& config, std::vector<Diagnostic>& diags)
        : file_(std::move(file)), base_(std::move(base_dir)), cfg_(config), diags_(diags) {}

    void run(const Node& root) {
        if (!root.is_map()) {
            error(root, "", "the configuration must be a YAML mapping of sections");
            return;
        }
        Children top;
        mapping(root, "",
                {"listen", "tls", "operations", "public_jwks", "hsm", "policy", "audit", "server",
                 "cluster", "tokens", "limits", "log"},
                top);
        section(top, "listen", root, false,
                [&](const Node& n) { endpoint(n, "listen", cfg_.listen); });
        section(top, "tls", root, true, [&](const Node& n) { tls(n); });
        section(top, "operations", root, false,
                [&](const Node& n) { endpoint(n, "operations", cfg_.operations); });
        section(top, "public_jwks", root, false, [&](const Node& n) {
            cfg_.public_jwks = Endpoint{"127.0.0.1", 8444};
            endpoint(n, "public_jwks", *cfg_.public_jwks);
        });
        section(top, "hsm", root, true, [&](const Node& n) { hsm(n); });
        section(top, "policy", root, true, [&](const Node& n) {
            Children c;
            mapping(n, "policy", {"path"}, c);
            path_field(c, n, "policy.path", "path", true, cfg_.policy.path);
        });
        section(top, "audit", root, true, [&](const Node& n) { audit(n); });
        section(top, "server", root, false, [&](const Node& n) {
            Children c;
            mapping(n, "server", {"worker_threads", "hsm_threads"}, c);
            uint_field(c, "server.worker_threads", "worker_threads", cfg_.server.worker_threads);
            uint_field(c, "server.hsm_threads", "hsm_threads", cfg_.server.hsm_threads);
        });
        section(top, "cluster", root, false, [&](const Node& n) {
            Children c;
            mapping(n, "cluster", {"refresh_interval", "claim_write_bound"}, c);
            duration_field(c, "cluster.refresh_interval", "refresh_interval",
                           cfg_.cluster.refresh_interval);
            duration_field(c, "cluster.claim_write_bound", "claim_write_bound",
                           cfg_.cluster.claim_write_bound);
        });
        // Removed: the issuer (iss) of a key's tokens is the `issuer` of that key in the policy.
        section(top, "tokens", root, false, [&](const Node& n) {
            error(n, "tokens",
                  "this section was removed: a token's issuer (iss) is the issuer of its key in "
                  "the policy; delete the section");
        });
        section(top, "limits", root, false, [&](const Node& n) { limits(n); });
        section(top, "log", root, false, [&](const Node& n) { log(n); });
    }

  private:
    template <typename F>
    void section(const Children& top, const char* name, const Node& root, bool required,
                 F&& parse) {
        auto it = top.find(name);
        if (it == top.end()) {
            if (required) error(root, name, "required section is missing");
            return;
        }
        if (!it->second->is_map()) {
            error(*it->second, name, "expected a mapping" + got(*it->second));
            return;
        }
        parse(*it->second);
    }

    // Collects the mapping's entries, reporting unknown keys. Duplicates were reported by the
    // YAML reader; the first occurrence counts.
    void mapping(const Node& node, const std::string& path,
                 std::initializer_list<std::string_view> allowed, Children& out) {
        for (const auto& [key, value] : node.pairs) {
            const std::string& name = key->value;
            const std::string full = join(path, name);
            if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
                std::string list;
                for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
                error(*key, full, "unknown key (allowed here: " + list + ")");
                continue;
            }
            if (!out.emplace(name, value).second) continue;
            cfg_.locations[full] = location(value->is_null() ? *key : *value);
        }
    }

    void endpoint(const Node& node, const std::string& path, Endpoint& out) {
        Children c;
        mapping(node, path, {"address", "port"}, c);
        string_field(c, node, path + ".address", "address", false, out.address);
        std::uint64_t port = out.port;
        if (uint_field(c, path + ".port", "port", port)) {
            if (port < 1 || port > 65535) {
                error(*c.at("port"), path + ".port", "port must be between 1 and 65535");
            } else {
                out.port = static_cast<std::uint16_t>(port);
            }
        }
    }

    void tls(const Node& node) {
        Children c;
        mapping(node, "tls", {"cert", "key", "client_ca"}, c);
        path_field(c, node, "tls.cert", "cert", true, cfg_.tls.cert);
        path_field(c, node, "tls.key", "key", true, cfg_.tls.key);
        path_field(c, node, "tls.client_ca", "client_ca", true, cfg_.tls.client_ca);
    }

    void hsm(const Node& node) {
        Children c;
        mapping(node, "hsm", {"module", "token_uri", "session_pool", "call_timeout"}, c);
        path_field(c, node, "hsm.module", "module", false, cfg_.hsm.module);
        uint_field(c, "hsm.session_pool", "session_pool", cfg_.hsm.session_pool);
        duration_field(c, "hsm.call_timeout", "call_timeout", cfg_.hsm.call_timeout);
        if (!string_field(c, node, "hsm.token_uri", "token_uri", true, cfg_.hsm.token_uri)) return;
        const Node& uri_node = *c.at("token_uri");
        const std::string& uri = cfg_.hsm.token_uri;
        // Parsed by p11-kit exactly as the daemon's Token::open parses it (RFC 7512): only token
        // and library attributes, never pin-value (the PIN in a configuration file).
        auto parsed = hsm::check_token_uri(uri);
        if (!parsed) {
            error(uri_node, "hsm.token_uri", parsed.error().message);
            return;
        }
        if (!parsed->pin_source || parsed->pin_source->empty()) {
            error(uri_node, "hsm.token_uri",
                  "needs the query attribute pin-source=file:PATH naming the PIN file");
            return;
        }
        // RFC 7512 §2.3: pin-source is a URI; only the file: scheme is supported. "file:///abs"
        // and "file:/abs" are absolute, "file:relative" resolves against the config directory.
        std::string p = *parsed->pin_source;
        if (p.rfind("file:", 0) != 0) {
            error(uri_node, "hsm.token_uri", "pin-source must be a file: URI");
            return;
        }
        p.erase(0, 5);
        if (p.rfind("//", 0) == 0) {
            if (p.rfind("///", 0) != 0) {
                error(uri_node, "hsm.token_uri", "pin-source file: URI must not name a host");
                return;
            }
            p.erase(0, 2);
        }
        if (p.empty()) {
            error(uri_node, "hsm.token_uri", "pin-source names no file");
            return;
        }
        cfg_.hsm.pin_file = resolve(p);
    }

    void audit(const Node& node) {
        Children c;
        mapping(node, "audit",
                {"dir", "origin", "checkpoint", "segment_bytes", "sync_timeout", "key_algorithm",
                 "prune_after"},
                c);
        path_field(c, node, "audit.dir", "dir", true, cfg_.audit.dir);
        string_field(c, node, "audit.origin", "origin", true, cfg_.audit.origin);
        uint_field(c, "audit.segment_bytes", "segment_bytes", cfg_.audit.segment_bytes);
        duration_field(c, "audit.sync_timeout", "sync_timeout", cfg_.audit.sync_timeout);
        if (std::chrono::milliseconds prune_after{};
            duration_field(c, "audit.prune_after", "prune_after", prune_after)) {
            cfg_.audit.prune_after = prune_after;
        }
        std::string algorithm;
        if (string_field(c, node, "audit.key_algorithm", "key_algorithm", false, algorithm) &&
            !algorithm.empty()) {
            if (algorithm == "Ed25519") {
                cfg_.audit.key_algorithm = AuditKeyAlgorithm::ed25519;
            } else if (algorithm == "ES256") {
                cfg_.audit.key_algorithm = AuditKeyAlgorithm::es256;
            } else {
                error(*c.at("key_algorithm"), "audit.key_algorithm", "must be Ed25519 or ES256");
            }
        }
        if (auto it = c.find("checkpoint"); it != c.end()) {
            if (!it->second->is_map()) {
                error(*it->second, "audit.checkpoint", "expected a mapping" + got(*it->second));
            } else {
                Children cp;
                mapping(*it->second, "audit.checkpoint", {"every_entries", "interval"}, cp);
                uint_field(cp, "audit.checkpoint.every_entries", "every_entries",
                           cfg_.audit.checkpoint_every_entries);
                duration_field(cp, "audit.checkpoint.interval", "interval",
                               cfg_.audit.checkpoint_interval);
            }
        }
    }

    void limits(const Node& node) {
        Children c;
        mapping(node, "limits",
                {"max_header_bytes", "max_body_bytes", "read_timeout", "idle_timeout",
                 "handshake_timeout", "max_connections", "max_handshakes",
                 "max_requests_in_flight_per_connection"},
                c);
        auto& l = cfg_.limits;
        uint_field(c, "limits.max_header_bytes", "max_header_bytes", l.max_header_bytes);
        uint_field(c, "limits.max_body_bytes", "max_body_bytes", l.max_body_bytes);
        duration_field(c, "limits.read_timeout", "read_timeout", l.read_timeout);
        duration_field(c, "limits.idle_timeout", "idle_timeout", l.idle_timeout);
        duration_field(c, "limits.handshake_timeout", "handshake_timeout", l.handshake_timeout);
        uint_field(c, "limits.max_connections", "max_connections", l.max_connections);
        uint_field(c, "limits.max_handshakes", "max_handshakes", l.max_handshakes);
        uint_field(c, "limits.max_requests_in_flight_per_connection",
                   "max_requests_in_flight_per_connection",
                   l.max_requests_in_flight_per_connection);
    }

    void log(const Node& node) {
        Children c;
        mapping(node, "log", {"level", "format"}, c);
        std::string format;
        if (string_field(c, node, "log.format", "format", false, format)) {
            if (format == "json") {
                cfg_.log.format = LogFormat::json;
            } else if (format == "text") {
                cfg_.log.format = LogFormat::text;
            } else {
                error(*c.at("format"), "log.format", "must be one of json, text");
            }
        }
        std::string level;
        if (!string_field(c, node, "log.level", "level", false, level)) return;
        if (level == "debug") {
            cfg_.log.level = LogLevel::debug;
        } else if (level == "info") {
            cfg_.log.level = LogLevel::info;
        } else if (level == "warning") {
            cfg_.log.level = LogLevel::warning;
        } else if (level == "error") {
            cfg_.log.level = LogLevel::error;
        } else {
            error(*c.at("level"), "log.level", "must be one of debug, info, warning, error");
        }
    }

    // --- typed fields. Each returns true when the key was present and well typed.

    bool string_field(const Children& c, const Node& parent, const std::string& path,
                      const char* name, bool required, std::string& out) {
        auto it = c.find(name);
        if (it == c.end()) {
            if (required) error(parent, path, "required key is missing");
            return false;
        }
        const Node& n = *it->second;
        if (!n.is_scalar()) {
            error(n, path, "expected a string" + got(n));
            return false;
        }
        if (n.value.empty()) {
            error(n, path, "must not be empty");
            return false;
        }
        out = n.value;
        return true;
    }

    bool path_field(const Children& c, const Node& parent, const std::string& path,
                    const char* name, bool required, fs::path& out) {
        std::string text;
        if (!string_field(c, parent, path, name, required, text)) return false;
        out = resolve(text);
        return true;
    }

    template <typename T>
    bool uint_field(const Children& c, const std::string& path, const char* name, T& out) {
        auto it = c.find(name);
        if (it == c.end()) return false;
        const Node& n = *it->second;
        // A quoted scalar ("8443") is a string in YAML: strict typing refuses it.
        if (!n.is_scalar() || !n.plain) {
            error(n, path, "expected an unsigned integer" + got(n));
            return false;
        }
        const std::string& s = n.value;
        std::uint64_t v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc() || end != s.data() + s.size() ||
            v > std::numeric_limits<T>::max()) {
            error(n, path, "expected an unsigned integer" + got(n));
            return false;
        }
        out = static_cast<T>(v);
        return true;
    }

    bool duration_field(const Children& c, const std::string& path, const char* name,
                        std::chrono::milliseconds& out) {
        auto it = c.find(name);
        if (it == c.end()) return false;
        const Node& n = *it->second;
        if (!n.is_scalar()) {
            error(n, path, "expected a duration such as 500ms, 10s, 5m, 1h, 1d" + got(n));
            return false;
        }
        auto d = core::parse_duration(n.value);
        if (!d) {
            error(n, path, "expected a duration such as 500ms, 10s, 5m, 1h, 1d" + got(n));
            return false;
        }
        out = *d;
        return true;
    }

    // --- helpers

    static std::string got(const Node& n) {
        switch (n.kind) {
            case Node::Kind::null:
                return ", got nothing (null)";
            case Node::Kind::mapping:
                return ", got a mapping";
            case Node::Kind::sequence:
                return ", got a sequence";
            case Node::Kind::scalar:
                if (n.value.size() > 40) return ", got a string";
                return ", got \"" + n.value + "\"";
            default:
                return {};
        }
    }

    static std::string join(const std::string& path, const std::string& name) {
        return path.empty() ? name : path + "." + name;
    }

    static Location location(const Node& n) { return {n.line, n.column}; }

    fs::path resolve(const std::string& p) const {
        fs::path path(p);
        if (path.is_relative()) path = base_ / path;
        return path.lexically_normal();
    }

    void error(const Node& at, const std::string& path, std::string message) {
        Location loc = location(at);
        diags_.push_back(Diagnostic{file_, loc.line, loc.column, path, std::move(message)});
    }

    std::string file_;
    fs::path base_;
    Config& cfg_;
    std::vector<Diagnostic>& diags_;
};

}  // namespace

std::string Diagnostic::to_string() const {
    std::ostringstream out;
    out << file;
    if (line > 0) out << ':' << line << ':' << column;
    out << ": ";
    if (!key_path.empty()) out << key_path << ": ";
    out << message;
    return out.str();
}

std::string_view to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warning:
            return "warning";
        case LogLevel::error:
            return "error";
        default:
            return "unknown";
    }
}

LoadResult parse_config(std::string_view text, const std::string& file_name,
                        const std::filesystem::path& base_dir) {
    LoadResult result;
    auto fatal = [&](int line, int column, std::string message) {
        result.diagnostics.push_back(Diagnostic{file_name, line, column, "", std::move(message)});
        return std::move(result);
    };
    if (text.size() > kMaxConfigBytes) {
        return fatal(0, 0, "file larger than " + std::to_string(kMaxConfigBytes) + " bytes");
    }
    const yaml::Document doc = yaml::parse(text, yaml::Options{"configuration", kMaxConfigBytes});
    for (const yaml::Issue& i : doc.issues) {
        result.diagnostics.push_back(Diagnostic{file_name, i.line, i.column, i.path, i.message});
    }
    if (doc.fatal || doc.root == nullptr) return result;
    if (doc.root->is_null()) return fatal(0, 0, "the configuration is empty");
    result.config.source = file_name;
    Parser parser(file_name, base_dir, result.config, result.diagnostics);
    parser.run(*doc.root);
    // In file order: the reader's duplicate keys among the parser's findings.
    std::stable_sort(result.diagnostics.begin(), result.diagnostics.end(),
                     [](const Diagnostic& a, const Diagnostic& b) {
                         return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                     });
    // Resolve the "0 means automatic" defaults.
    Config& c = result.config;
    if (c.server.worker_threads == 0) {
        c.server.worker_threads = std::max(1u, std::thread::hardware_concurrency());
    }
    if (c.server.hsm_threads == 0) c.server.hsm_threads = c.hsm.session_pool;
    return result;
}

LoadResult load_config(const std::filesystem::path& file) {
    std::error_code ec;
    fs::path absolute = fs::absolute(file, ec);
    if (ec) absolute = file;
    absolute = absolute.lexically_normal();
    LoadResult result;
    auto fail = [&](std::string message) {
        result.diagnostics.push_back(Diagnostic{file.string(), 0, 0, "", std::move(message)});
        return std::move(result);
    };
    if (!fs::is_regular_file(absolute, ec)) return fail("not a readable regular file");
    if (fs::file_size(absolute, ec) > kMaxConfigBytes || ec) {
        return fail("file larger than " + std::to_string(kMaxConfigBytes) + " bytes");
    }
    std::ifstream in(absolute, std::ios::binary);
    if (!in) return fail("cannot open the file");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    result = parse_config(text, file.string(), absolute.parent_path());
    return result;
}

core::Result<Config> load_and_validate(const std::filesystem::path& file,
                                       std::vector<Diagnostic>* diagnostics) {
    LoadResult loaded = load_config(file);
    std::vector<Diagnostic> all = std::move(loaded.diagnostics);
    if (all.empty()) all = validate_config(loaded.config);
    if (diagnostics != nullptr) *diagnostics = all;
    if (!all.empty()) {
        std::string message;
        for (const auto& d : all) message += (message.empty() ? "" : "\n") + d.to_string();
        return core::make_error(core::ErrorKind::usage, "config.invalid", std::move(message));
    }
    return std::move(loaded.config);
}

}  // namespace licentra::config
