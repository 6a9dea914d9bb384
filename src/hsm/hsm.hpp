// The PKCS#11 layer: module, token selection and login, session pool, key generation and
// signing, key-state data objects and HMAC keys. The only module that talks PKCS#11; this
// header keeps PKCS#11 types out so nothing else needs pkcs11.h.
//
// Thread-safety: Module and Token are thread-safe; every Token operation borrows one pooled
// session for its duration (one session is never used by two threads at once).
// Errors: request errors are ErrorKind::usage / conflict / not_found; a broken session or an
// unreachable device that survives one retry on a fresh session is ErrorKind::hsm_unavailable;
// a busy pool past its wait bound is ErrorKind::overloaded. Codes are "hsm.<reason>"; messages name
// the PKCS#11 function and return value, never a PIN or key material.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "core/metrics.hpp"
#include "core/result.hpp"
#include "crypto/algorithm.hpp"
#include "crypto/public_key.hpp"
#include "crypto/signer.hpp"

namespace licentra::keys {
class Capabilities;  // mints the key capabilities below (keys/capabilities.hpp)
}

namespace licentra::hsm {

namespace detail {
struct KeyHandles;   // cached PKCS#11 object handles (hsm/internal.hpp)
struct ModuleState;  // dlopen handle and function list
struct TokenState;   // slot, PIN, session pool, caches
}  // namespace detail

// A loaded PKCS#11 module. load() dlopens the library, calls C_GetFunctionList and
// C_Initialize (CKF_OS_LOCKING_OK); the destructor calls C_Finalize once. Loading the same
// path again while an instance is alive returns that instance (C_Initialize is per process).
// Never fork after loading: SoftHSM is not fork-safe; operations in a forked child fail.
class Module {
  public:
    [[nodiscard]] static core::Result<std::shared_ptr<Module>> load(
        const std::filesystem::path& path);
    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    [[nodiscard]] const std::filesystem::path& path() const noexcept;
    [[nodiscard]] detail::ModuleState& state() const noexcept { return *state_; }

  private:
    explicit Module(std::unique_ptr<detail::ModuleState> state);
    std::unique_ptr<detail::ModuleState> state_;
};

// Bounded exponential backoff for reopening sessions and logging in again after a fault.
struct Backoff {
    std::chrono::milliseconds initial{10};
    std::chrono::milliseconds max{500};
    unsigned attempts = 5;  // total attempts per reopen (>= 1)
};

// The operational log of HSM faults: one line when a fault class starts, with what failed
// (function and CKR_* name), at most one per `interval` per class, and one line when it clears
// ("recovered after N ms"). Classes are strings such as "hsm.device_unavailable (signing)" or
// "hsm.timeout". Thread-safe; success() is one atomic load while nothing is faulted.
class FaultLog {
  public:
    using Sink = std::function<void(std::string_view)>;
    explicit FaultLog(Sink sink = {}, std::chrono::milliseconds interval = std::chrono::seconds(10))
        : sink_(std::move(sink)), interval_(interval) {}
    FaultLog(const FaultLog&) = delete;
    FaultLog& operator=(const FaultLog&) = delete;

    void set_sink(Sink sink);
    // A fault of class `cls`; detail says what failed ("C_Sign returned CKR_DEVICE_ERROR").
    void fault(const std::string& cls, std::string_view detail);
    // Every class whose name starts with `prefix` and is faulted has recovered.
    void recovered(std::string_view prefix = {});
    [[nodiscard]] bool faulted() const noexcept { return active_.load() > 0; }

  private:
    struct Entry {
        std::optional<std::chrono::steady_clock::time_point> since;
        std::optional<std::chrono::steady_clock::time_point> last_fault_line;
        std::optional<std::chrono::steady_clock::time_point> last_recovery_line;
        unsigned suppressed = 0;
    };
    mutable std::mutex mutex_;
    Sink sink_;
    std::chrono::milliseconds interval_;
    std::map<std::string, Entry, std::less<>> entries_;
    std::atomic<int> active_{0};
};

// PKCS#11 metrics of this process (a module is initialized once per process), for /metrics.
// Updated lock-free on every call.
struct Metrics {
    // Every C_* call by function name ("C_Sign") and result: "ok", or the class of its CKR_*
    // value (request, conflict, stale_handle, session, device, auth, internal).
    core::metrics::Family<core::metrics::Counter> operations{{"operation", "result"}, 512};
    // Calls that did not return CKR_OK, by CKR_* name ("CKR_DEVICE_ERROR").
    core::metrics::Family<core::metrics::Counter> errors{{"ckr"}, 128};
    // Time to borrow a pooled session (idle, newly opened or waited for), in seconds; calls that
    // gave up (pool busy, token lost) included.
    core::metrics::Histogram session_wait{core::metrics::kLatencySeconds};
    // Sessions closed after a session or device fault.
    core::metrics::Counter sessions_evicted;
};
[[nodiscard]] Metrics& metrics() noexcept;

// The session pool at one instant. suspect: idle sessions opened before the last session or
// device fault; each is checked (C_GetSessionInfo) before reuse and closed if it died.
struct PoolStats {
    std::size_t idle = 0;
    std::size_t in_use = 0;
    std::size_t suspect = 0;
};

// A token URI as Token::open reads it, checked by p11-kit without opening anything (RFC 7512):
// only token and library attributes, no pin-value. pin_source: the decoded pin-source value
// (e.g. "file:/etc/licentra/user.pin"), if the URI has one. Errors: usage hsm.uri_malformed,
// hsm.uri_pin_value. The one parser of token URIs: configuration checks use it too.
struct TokenUri {
    std::optional<std::string> pin_source;
};
[[nodiscard]] core::Result<TokenUri> check_token_uri(const std::string& uri);

struct TokenOptions {
    // RFC 7512 token URI, e.g. "pkcs11:token=licentra?pin-source=file:/etc/licentra/user.pin".
    // Token attributes (token, serial, model, manufacturer) and library attributes select the
    // token; pin-source=file:<path> names the PIN file. pin-value is refused.
    std::string uri;
    std::size_t pool_size = 4;                        // sessions, >= 1
    std::optional<std::filesystem::path> pin_file;    // overrides the URI's pin-source
    std::chrono::milliseconds acquire_timeout{2000};  // wait for a free session, then limit
    Backoff backoff;
    // The operational log (one line per call); empty = faults are not logged. See FaultLog.
    std::function<void(std::string_view)> log;
};

// A key version on the token: one key pair labelled "licentra/<name>/v<version>".
// Cheap to copy; the object handles are shared and refreshed after a fault.
struct KeyRef {
    std::string label;
    std::string name;
    unsigned version = 0;
    crypto::Algorithm algorithm = crypto::Algorithm::EdDSA;
    std::shared_ptr<const crypto::PublicKey> public_key;
    core::Bytes id;  // CKA_ID (16 random bytes from the token's RNG for keys we generate)
    std::shared_ptr<detail::KeyHandles> handles;
};

struct KeyInfo {
    std::string label;
    std::string name;
    unsigned version = 0;
    std::optional<crypto::Algorithm> algorithm;  // empty if the key type is not one of ours
    std::string id_hex;
    bool has_private = false;
    bool has_public = false;
};

// "licentra/<name>/v<version>"; name is 1-64 of [A-Za-z0-9._-], version >= 1.
[[nodiscard]] core::Result<std::string> key_label(std::string_view name, unsigned version);
// Inverse of key_label.
[[nodiscard]] core::Result<std::pair<std::string, unsigned>> parse_key_label(
    std::string_view label);

// Privilege down to the token: the calls that sign with, generate or destroy a key pair take a
// capability for that key name, and only keys::Capabilities mints one — from the policy's
// Grant (token.sign, key.lifecycle.execute, audit.checkpoint.sign), or by name for the
// key ceremony and tests that drive a token no daemon uses. A capability names a key, not a
// version: the key manager chooses the version. Cheap to copy.
enum class KeyOp { sign, generate, destroy };

template <KeyOp Op>
class KeyCapability {
  public:
    [[nodiscard]] const std::string& key() const noexcept { return key_; }

  private:
    friend class licentra::keys::Capabilities;
    explicit KeyCapability(std::string key) : key_(std::move(key)) {}
    std::string key_;
};
using SignCapability = KeyCapability<KeyOp::sign>;
using GenerateCapability = KeyCapability<KeyOp::generate>;
using DestroyCapability = KeyCapability<KeyOp::destroy>;

class Token {
  public:
    // Parses the URI (p11-kit), selects the single initialized token it matches, reads the
    // PIN file (must be mode 0600 or stricter), logs in once and fills the first pooled
    // session. Never retries a rejected PIN.
    [[nodiscard]] static core::Result<std::unique_ptr<Token>> open(std::shared_ptr<Module> module,
                                                                   TokenOptions options);
    ~Token();
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;

    [[nodiscard]] const std::string& label() const noexcept;
    [[nodiscard]] const std::string& serial() const noexcept;

    // ---- keys ----
    // Generates version `version` of the capability's key: a sign-only key pair inside the
    // token (token, private, sensitive, non-extractable, CKA_ID from C_GenerateRandom), reads
    // its attributes back and runs a sign-then-verify self-test. The key name is the
    // capability's, so it cannot differ from what was granted. Errors: conflict if the label
    // exists; usage for bad names or version 0.
    [[nodiscard]] core::Result<KeyRef> generate_key(const GenerateCapability& capability,
                                                    unsigned version, crypto::Algorithm alg);
    // Finds the key pair by label, checks its attributes like generate_key and self-tests it.
    // Errors: not_found; integrity if the key is not sign-only/sensitive/non-extractable.
    [[nodiscard]] core::Result<KeyRef> load_key(const std::string& label);
    [[nodiscard]] core::Result<KeyRef> load_key(const std::string& name, unsigned version);
    // The pair labelled `label` whose CKA_ID is *id (any pair if id is null). Several pairs can
    // share a label when replicas raced (docs/adr/0004); the id tells them apart.
    [[nodiscard]] core::Result<KeyRef> load_key(const std::string& label, const core::Bytes* id);
    // Key pairs whose label starts with prefix (and parses as a key label), sorted by label,
    // one entry per (label, CKA_ID).
    [[nodiscard]] core::Result<std::vector<KeyInfo>> list_keys(
        const std::string& prefix = "licentra/");
    // Public key of a version whose private object may already be destroyed.
    // True if any object (of any class) carries this label: one search the token answers by
    // itself, without reading each object's attributes over PKCS#11.
    [[nodiscard]] core::Result<bool> label_exists(const std::string& label);
    // id: as for load_key.
    [[nodiscard]] core::Result<crypto::PublicKey> public_key(const std::string& label,
                                                             const core::Bytes* id = nullptr);
    // The public keys of several pairs (label, CKA_ID) in one pass: one search per key object
    // class and two attribute reads per object, however many pairs are asked for (public_key
    // searches the token twice per pair). Each answer is what public_key(label, &id) would be,
    // in the order asked; an object that vanished while it was read makes a pair it may have
    // been part of hsm.object_gone instead of hsm.key_not_found. The outer error is a token
    // fault that stopped the pass.
    [[nodiscard]] core::Result<std::vector<core::Result<crypto::PublicKey>>> public_keys(
        const std::vector<std::pair<std::string, core::Bytes>>& pairs);
    // Destroys the private key object (the public key object stays for the record); with id,
    // only the one whose CKA_ID is *id. Errors: usage hsm.capability_mismatch for a capability
    // of another key, refused before the token is touched.
    [[nodiscard]] core::Status destroy_private_key(const DestroyCapability& capability,
                                                   const std::string& label,
                                                   const core::Bytes* id = nullptr);
    // Signs message (the full signing input) in JWS form: EdDSA 64 bytes, ES256/ES384 raw
    // r||s (hashed here first), PS256 with SHA-256/MGF1-SHA-256/salt 32. No C_FindObjects on
    // this path except once after a fault invalidated the cached handles. Errors: as
    // destroy_private_key for a capability of another key.
    [[nodiscard]] core::Result<core::Bytes> sign(const SignCapability& capability,
                                                 const KeyRef& key, core::ByteView message);
    // Proves the key still signs: a signature of fresh random bytes, on the signing path
    // (handles re-resolved after a fault), verified with its public key. Needs no capability:
    // the caller chooses nothing that gets signed. For readiness probes. Errors: as sign, and
    // integrity hsm.self_test if the signature does not verify.
    [[nodiscard]] core::Status self_test(const KeyRef& key);

    // ---- CKO_DATA objects (CKA_TOKEN, CKA_PRIVATE, CKA_APPLICATION "licentra") ----
    // Reads always go to the token: several daemons share it.
    // write_data creates a new object, then destroys the older ones with the same label; a
    // crash in between leaves two objects and readers pick the newer one.
    [[nodiscard]] core::Status write_data(const std::string& label, core::ByteView value);
    // Creates one more object with this label and never touches existing ones: for the
    // append-only records that several daemons write at the same instant (docs/adr/0004).
    [[nodiscard]] core::Status create_data(const std::string& label, core::ByteView value);
    [[nodiscard]] core::Result<std::optional<core::Bytes>> read_data(const std::string& label);
    [[nodiscard]] core::Status delete_data(const std::string& label);  // ok if absent
    [[nodiscard]] core::Result<std::vector<std::pair<std::string, core::Bytes>>> list_data(
        const std::string& prefix);

    // ---- HMAC-SHA-256 (audit pseudonyms) ----
    // Creates a 32-byte CKK_GENERIC_SECRET key (token, private, sensitive, non-extractable,
    // CKA_SIGN only) unless one with this label exists; checks an existing one.
    [[nodiscard]] core::Status ensure_hmac_key(const std::string& label);
    [[nodiscard]] core::Result<core::Bytes> hmac_sha256(const std::string& label,
                                                        core::ByteView data);
    // Labels of the secret keys whose label starts with prefix, sorted, each once.
    [[nodiscard]] core::Result<std::vector<std::string>> list_hmac_keys(const std::string& prefix);
    // Destroys every secret key labelled `label`; returns how many this call destroyed (0 if
    // none was left, e.g. another daemon destroyed it first).
    [[nodiscard]] core::Result<std::size_t> destroy_hmac_key(const std::string& label);

    // Fault lines for the operational log: the token reports PKCS#11 faults here; callers may
    // report their own classes (timeouts, readiness probes) so one limiter covers them all.
    [[nodiscard]] FaultLog& fault_log() const noexcept;

    // Drops the module's per-process view of the token: once no call is in flight the module
    // is re-initialized (C_Finalize + C_Initialize), sessions reopen and keys are looked up
    // again; calls meanwhile wait for it (up to the acquire timeout, then hsm.token_lost, 503).
    // For a view that stopped matching the token (SoftHSM's file store can lose sight of
    // objects other processes wrote). why (optional) says in the log what showed it.
    void reload_view(std::string_view why = {});

    // The session pool now (takes the pool lock briefly; for /metrics).
    [[nodiscard]] PoolStats pool_stats() const;

    // Internal state (slot, pool) for hsm/internal.hpp; not for other modules.
    [[nodiscard]] detail::TokenState& state() const noexcept { return *state_; }

  private:
    explicit Token(std::unique_ptr<detail::TokenState> state);
    std::unique_ptr<detail::TokenState> state_;
};

// crypto::Signer over an HSM key. Keeps the token alive. Thread-safe.
class HsmSigner final : public crypto::Signer {
  public:
    HsmSigner(std::shared_ptr<Token> token, KeyRef key, SignCapability capability);
    [[nodiscard]] crypto::Algorithm algorithm() const override { return key_.algorithm; }
    [[nodiscard]] const crypto::PublicKey& public_key() const override { return *key_.public_key; }
    [[nodiscard]] core::Result<core::Bytes> sign(core::ByteView message) override;
    [[nodiscard]] const KeyRef& key() const noexcept { return key_; }

  private:
    std::shared_ptr<Token> token_;
    KeyRef key_;
    SignCapability capability_;
};

}  // namespace licentra::hsm
