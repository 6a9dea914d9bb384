// Semantic checks on a parsed configuration. Every problem is reported, not just the first.
#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "config/config.hpp"
#include "core/names.hpp"
#include "core/time.hpp"

namespace licentra::config {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class Checker {
  public:
    explicit Checker(const Config& c) : c_(c) {}

    // Two listeners on one port: the same address, or either on every address.
    static bool shares_port(const Endpoint& a, const Endpoint& b) {
        const auto any = [](const std::string& x) { return x == "0.0.0.0" || x == "::"; };
        return a.port == b.port && (a.address == b.address || any(a.address) || any(b.address));
    }

    std::vector<Diagnostic> run() {
        address("listen.address", c_.listen.address);
        address("operations.address", c_.operations.address);
        if (shares_port(c_.listen, c_.operations)) {
            add("operations.port", "the operations listener cannot share the API listener's port");
        }
        if (c_.public_jwks) {
            address("public_jwks.address", c_.public_jwks->address);
            for (const Endpoint* other : {&c_.listen, &c_.operations}) {
                if (shares_port(*c_.public_jwks, *other)) {
                    add("public_jwks.port",
                        other == &c_.listen
                            ? "the public JWKS listener cannot share the API listener's port"
                            : "the public JWKS listener cannot share the operations port");
                }
            }
        }

        file("tls.cert", c_.tls.cert);
        file("tls.key", c_.tls.key);
        file("tls.client_ca", c_.tls.client_ca);

        file("hsm.module", c_.hsm.module);
        range("hsm.session_pool", c_.hsm.session_pool, 1, 64);
        duration("hsm.call_timeout", c_.hsm.call_timeout, 100ms, 120s);
        if (!c_.hsm.pin_file.empty()) pin_file("hsm.token_uri", c_.hsm.pin_file);

        file("policy.path", c_.policy.path);

        audit_dir();
        const std::string& origin = c_.audit.origin;
        // The rule the audit log applies when it opens (the first line of every checkpoint).
        if (!core::is_valid_log_origin(origin)) {
            add("audit.origin", "must be 1-255 printable ASCII characters without spaces");
        }
        range("audit.checkpoint.every_entries", c_.audit.checkpoint_every_entries, 1, 1'000'000);
        duration("audit.checkpoint.interval", c_.audit.checkpoint_interval, 1s, 24h);
        duration("cluster.refresh_interval", c_.cluster.refresh_interval, 100ms, 10s);
        duration("cluster.claim_write_bound", c_.cluster.claim_write_bound, 20ms, 10s);
        range("audit.segment_bytes", c_.audit.segment_bytes, 1 << 20, 4ull << 30);
        duration("audit.sync_timeout", c_.audit.sync_timeout, 100ms, 60s);
        if (c_.audit.prune_after) {
            duration("audit.prune_after", *c_.audit.prune_after, 1s,
                     std::chrono::milliseconds(core::kMaxDurationMillis));
        }

        range("server.worker_threads", c_.server.worker_threads, 1, 256);
        range("server.hsm_threads", c_.server.hsm_threads, 1, 256);
        if (c_.server.hsm_threads > c_.hsm.session_pool) {
            add("server.hsm_threads", "more HSM threads (" + std::to_string(c_.server.hsm_threads) +
                                          ") than HSM sessions (" +
                                          std::to_string(c_.hsm.session_pool) +
                                          "): each thread needs its own session");
        }

        const LimitsConfig& l = c_.limits;
        range("limits.max_header_bytes", l.max_header_bytes, 1024, 65536);
        range("limits.max_body_bytes", l.max_body_bytes, 1024, 16u << 20);
        duration("limits.read_timeout", l.read_timeout, 100ms, 1h);
        duration("limits.idle_timeout", l.idle_timeout, 100ms, 1h);
        duration("limits.handshake_timeout", l.handshake_timeout, 100ms, 1h);
        range("limits.max_connections", l.max_connections, 1, 1'000'000);
        range("limits.max_handshakes", l.max_handshakes, 1, 1'000'000);
        range("limits.max_requests_in_flight_per_connection",
              l.max_requests_in_flight_per_connection, 1, 128);
        return std::move(out_);
    }

  private:
    void add(const std::string& key, std::string message) {
        Location loc;
        if (auto it = c_.locations.find(key); it != c_.locations.end()) loc = it->second;
        out_.push_back(Diagnostic{c_.source, loc.line, loc.column, key, std::move(message)});
    }

    void address(const std::string& key, const std::string& text) {
        unsigned char buf[sizeof(in6_addr)];
        if (inet_pton(AF_INET, text.c_str(), buf) != 1 &&
            inet_pton(AF_INET6, text.c_str(), buf) != 1) {
            add(key, "must be an IPv4 or IPv6 address literal");
        }
    }

    template <typename T>
    void range(const std::string& key, T value, std::uint64_t min, std::uint64_t max) {
        const auto v = static_cast<std::uint64_t>(value);
        if (v < min || v > max) {
            add(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                         " (is " + std::to_string(v) + ")");
        }
    }

    void duration(const std::string& key, std::chrono::milliseconds value,
                  std::chrono::milliseconds min, std::chrono::milliseconds max) {
        if (value < min || value > max) {
            add(key, "must be between " + std::to_string(min.count()) + "ms and " +
                         std::to_string(max.count()) + "ms");
        }
    }

    void file(const std::string& key, const fs::path& path) {
        if (path.empty()) return;  // a missing required key was already reported by the loader
        std::error_code ec;
        auto st = fs::status(path, ec);
        if (ec || !fs::exists(st)) {
            add(key, "file " + path.string() + " does not exist");
        } else if (!fs::is_regular_file(st)) {
            add(key, path.string() + " is not a regular file");
        } else if (::access(path.c_str(), R_OK) != 0) {
            add(key, "file " + path.string() + " is not readable");
        }
    }

    void pin_file(const std::string& key, const fs::path& path) {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            add(key, "PIN file " + path.string() + " does not exist");
            return;
        }
        if (!S_ISREG(st.st_mode)) {
            add(key, "PIN file " + path.string() + " is not a regular file");
            return;
        }
        // Same rule core::read_secret_file applies at start-up, caught here for --check-config.
        if ((st.st_mode & 077) != 0) {
            char mode[8];
            std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
            add(key, "PIN file " + path.string() + " has mode " + mode +
                         "; it must not be accessible by group or others (chmod 600)");
        }
    }

    void audit_dir() {
        const fs::path& dir = c_.audit.dir;
        if (dir.empty()) return;
        std::error_code ec;
        if (fs::exists(dir, ec)) {
            if (!fs::is_directory(dir, ec)) add("audit.dir", dir.string() + " is not a directory");
            return;
        }
        // The daemon creates the log directory itself, but not a whole missing tree: a typo
        // should fail here rather than create a stray directory.
        if (!fs::is_directory(dir.parent_path(), ec)) {
            add("audit.dir", "neither " + dir.string() + " nor its parent directory exists");
        }
    }

    const Config& c_;
    std::vector<Diagnostic> out_;
};

}  // namespace

std::vector<Diagnostic> validate_config(const Config& config) { return Checker(config).run(); }

}  // namespace licentra::config
