// licentra-signd configuration: plain structs, strict YAML loading, validation.
//
// load_config() parses the YAML file strictly (unknown key, wrong type, duplicate key, missing
// required key, anchor or alias = error with file:line:column and the key path) and collects
// every error; validate_config() then checks ranges, addresses and files, again reporting every
// problem.
// Relative paths are resolved against the directory of the configuration file. Every key and
// its default is documented in docs/configuration.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/log_level.hpp"
#include "core/result.hpp"

namespace licentra::config {

struct Endpoint {
    std::string address;  // IPv4 or IPv6 literal
    std::uint16_t port = 0;
};

struct TlsConfig {
    std::filesystem::path cert;       // server certificate chain (PEM)
    std::filesystem::path key;        // server private key (PEM)
    std::filesystem::path client_ca;  // CA bundle that client certificates must chain to (PEM)
};

struct HsmConfig {
    std::filesystem::path module = "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so";
    // RFC 7512 PKCS#11 URI naming the token, exactly as written in the file. It carries the PIN
    // location as the query attribute pin-source=file:<path>; the PIN itself never appears.
    std::string token_uri;
    // The pin-source file, resolved (absolute). Read it with core::read_secret_file.
    std::filesystem::path pin_file;
    std::size_t session_pool = 4;
    // Deadline for the HSM work of one request (and of one readiness probe); past it the
    // request is answered 503 hsm.timeout and the thread stuck in the module is replaced.
    std::chrono::milliseconds call_timeout{5000};
};

struct PolicyConfig {
    std::filesystem::path path;
};

// Signature algorithm of the checkpoint key (C2SP signed-note types 0x01 and 0x02).
enum class AuditKeyAlgorithm { ed25519, es256 };

struct AuditConfig {
    std::filesystem::path dir;
    std::string origin;  // C2SP tlog-checkpoint origin line; unique per daemon
    std::uint64_t checkpoint_every_entries = 1000;
    std::chrono::milliseconds checkpoint_interval{std::chrono::seconds(60)};
    std::uint64_t segment_bytes = 64ull * 1024 * 1024;
    // Longest write + fdatasync of an audit batch; past it the appends fail (503) and the log
    // is not ready until a sync completes in time.
    std::chrono::milliseconds sync_timeout{std::chrono::seconds(5)};
    AuditKeyAlgorithm key_algorithm = AuditKeyAlgorithm::ed25519;  // of a generated audit key
    // Entries older than this lose their payloads while the daemon runs
    // (AuditLog::prune_before, docs/audit.md#pruning); absent: never.
    std::optional<std::chrono::milliseconds> prune_after;
};

struct ServerConfig {
    std::size_t worker_threads = 0;  // resolved: 0 in the file = number of CPUs
    std::size_t hsm_threads = 0;     // resolved: 0 in the file = hsm.session_pool
};

// How replicas that share one token agree (docs/adr/0004-shared-state-on-the-token.md).
struct ClusterConfig {
    // Key state and requests are re-read this often; a change made by one replica is seen by
    // every replica within it. New versions stay pre-active at least twice this long.
    std::chrono::milliseconds refresh_interval{std::chrono::seconds(1)};
    // Longest check-then-write step of a claim; a replica whose step took longer stands back.
    // Claimers wait twice this long before reading the claims back.
    std::chrono::milliseconds claim_write_bound{500};
};

struct LimitsConfig {
    std::size_t max_header_bytes = 8192;
    std::size_t max_body_bytes = 65536;
    std::chrono::milliseconds read_timeout{std::chrono::seconds(10)};
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
    std::chrono::milliseconds handshake_timeout{std::chrono::seconds(5)};
    std::size_t max_connections = 4096;
    std::size_t max_handshakes = 256;  // of max_connections, not yet through the handshake
    std::size_t max_requests_in_flight_per_connection = 8;
};

using LogLevel = core::LogLevel;
using LogFormat = core::LogFormat;

struct LogConfig {
    LogLevel level = LogLevel::info;
    LogFormat format = LogFormat::json;
};

// Where a key was written: used by validation errors. Line and column are 1-based.
struct Location {
    int line = 0;
    int column = 0;
};

struct Config {
    Endpoint listen{"127.0.0.1", 8443};
    TlsConfig tls;
    Endpoint operations{"127.0.0.1", 9090};
    // The public JWKS listener (TLS, server certificate only, no client certificate; serves
    // only /.well-known/jwks.json). Absent: none.
    std::optional<Endpoint> public_jwks;
    HsmConfig hsm;
    PolicyConfig policy;
    AuditConfig audit;
    ServerConfig server;
    ClusterConfig cluster;
    LimitsConfig limits;
    LogConfig log;

    std::string source;  // the file name as given to load_config/parse_config (for messages)
    // Key path ("hsm.session_pool") -> where it was written; absent for defaulted keys.
    std::map<std::string, Location> locations;
};

// One problem, reported as "file:line:column: key.path: message" (line/column omitted when the
// problem is about a key that was not written at all).
struct Diagnostic {
    std::string file;
    int line = 0;
    int column = 0;
    std::string key_path;
    std::string message;

    [[nodiscard]] std::string to_string() const;
};

struct LoadResult {
    Config config;                        // meaningful only when diagnostics is empty
    std::vector<Diagnostic> diagnostics;  // every problem found
    [[nodiscard]] bool ok() const noexcept { return diagnostics.empty(); }
};

// Largest configuration file accepted.
inline constexpr std::size_t kMaxConfigBytes = 256 * 1024;

// Parses YAML text. file_name appears in diagnostics; base_dir resolves relative paths.
// The text is read by yaml::parse (yaml/document.hpp): anchors, aliases, merge keys, explicit
// tags, several documents, invalid UTF-8 and excessive nesting are refused with their line.
// Never throws. Does not touch the file system.
[[nodiscard]] LoadResult parse_config(std::string_view text, const std::string& file_name,
                                      const std::filesystem::path& base_dir);

// Reads and parses the file (relative paths resolve against its directory).
[[nodiscard]] LoadResult load_config(const std::filesystem::path& file);

// Checks a parsed config: ranges, address literals, files that must exist (TLS files, CA
// bundle, PKCS#11 module, policy, PIN file with mode 0600 or stricter), the audit directory or
// its parent. Returns every problem; empty means valid. Reads no file contents.
[[nodiscard]] std::vector<Diagnostic> validate_config(const Config& config);

// load_config + validate_config. On failure the error (kind usage, code "config.invalid") has
// every diagnostic on its own line; the same list is stored in *diagnostics when given.
[[nodiscard]] core::Result<Config> load_and_validate(
    const std::filesystem::path& file, std::vector<Diagnostic>* diagnostics = nullptr);

[[nodiscard]] std::string_view to_string(LogLevel level) noexcept;

}  // namespace licentra::config
