// Key lifecycle on the HSM token: versions, their states, and signing with the active one.
//
// The token is the one source of truth. Each key version is a key pair labelled
// "licentra/<name>/v<N>" plus a CKO_DATA state record labelled "licentra/<name>/v<N>/state"
// (canonical JSON, see VersionRecord). Several daemons share one token; each keeps a snapshot
// that refresh() rebuilds from the token, and a periodic refresh lets every daemon see the
// others' changes within the refresh interval.
//
// States (DESIGN.md "Key lifecycle"):
//   pre-active  published in the JWKS, not yet signing
//   active      exactly one per key name signs
//   retired     no longer signs; published until verify_until
//   destroyed   private object destroyed; no longer published
//
// Thread-safety: every member is thread-safe. Readers work on an immutable snapshot
// (lock-free); changes are serialized by an internal mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.hpp"
#include "core/grant.hpp"
#include "core/result.hpp"
#include "core/time.hpp"
#include "crypto/algorithm.hpp"
#include "crypto/public_key.hpp"
#include "hsm/hsm.hpp"

namespace licentra::keys {

enum class KeyState { pre_active, active, retired, destroyed };
[[nodiscard]] std::string_view state_name(KeyState s) noexcept;
[[nodiscard]] std::optional<KeyState> state_from_name(std::string_view s) noexcept;

// The state record of one key version as stored on the token. Times are Unix milliseconds.
struct VersionRecord {
    unsigned version = 0;
    crypto::Algorithm algorithm = crypto::Algorithm::EdDSA;
    KeyState state = KeyState::pre_active;
    std::int64_t created_ms = 0;
    std::optional<std::int64_t> activate_at_ms;  // pre-active: when it becomes active
    std::optional<std::int64_t> activated_ms;
    std::optional<std::int64_t> retired_ms;
    std::optional<std::int64_t> verify_until_ms;  // retired: published until then
    std::optional<std::int64_t> destroyed_ms;

    [[nodiscard]] std::string to_json() const;  // canonical: sorted keys, no whitespace
    [[nodiscard]] static core::Result<VersionRecord> from_json(core::ByteView json);
};

// One key version as the daemon sees it.
struct KeyVersion {
    std::string name;
    std::string label;  // "licentra/<name>/v<N>"
    VersionRecord record;
    std::shared_ptr<const crypto::PublicKey> public_key;  // null once destroyed
    std::string kid;                                      // RFC 7638 thumbprint

    [[nodiscard]] bool published(core::TimePoint now) const noexcept;
};

// Computes a key's kid (the RFC 7638 thumbprint); supplied by the caller so that keys/ does
// not depend on the token encoding.
using KidFunction = std::function<std::string(const crypto::PublicKey&)>;

// Per-key timing from the policy, used by lifecycle transitions.
struct Timing {
    std::chrono::seconds publish_ahead{0};  // pre-active this long before it signs
    std::chrono::seconds max_validity{0};   // longest token lifetime
    std::chrono::seconds verify_grace{0};   // extra time a retired version stays published
};

// Called for every state change while the change is still exclusive of signing, so an audit
// entry appended from here is ordered after every signature by the old state and before every
// signature by the new one. event: "key.rotate" (new version created), "key.activate",
// "key.retire", "key.destroy".
using TransitionHook = std::function<void(std::string_view event, const KeyVersion& version)>;

// The result of a signature: which version made it.
struct Signed {
    core::Bytes signing_input;
    core::Bytes signature;
    unsigned version = 0;
    std::string kid;
    crypto::Algorithm algorithm = crypto::Algorithm::EdDSA;
};

class KeyManager {
  public:
    KeyManager(std::shared_ptr<hsm::Token> token, KidFunction kid);
    KeyManager(const KeyManager&) = delete;
    KeyManager& operator=(const KeyManager&) = delete;

    // Rebuilds the snapshot from the token: reads every state record, loads (attribute check
    // and self-test) any newly active version, exports public keys of published versions, and
    // activates pre-active versions whose activation time has passed (see tick()).
    [[nodiscard]] core::Status refresh();

    // Creates v1 of a key that has no version on the token, active at once, and returns it;
    // returns nullopt if the key already has a version. Errors: conflict if the key has
    // versions but none is active; hsm errors.
    [[nodiscard]] core::Result<std::optional<KeyVersion>> bootstrap(
        const core::Grant<core::action::KeyLifecycleExecute>& grant, crypto::Algorithm alg);

    // Signs with the active version of grant.key(). make_input builds the signing input from
    // the version that will sign (its kid and algorithm go into the JWS header). Errors:
    // not_found (no active version), hsm errors.
    //
    // on_signed runs before any lifecycle change can make the signing version inactive, so a
    // caller that appends the audit entry from it orders that entry before the change's own.
    [[nodiscard]] core::Result<Signed> sign(
        const core::Grant<core::action::TokenSign>& grant,
        const std::function<core::Bytes(const KeyVersion&)>& make_input,
        const std::function<void(const Signed&)>& on_signed = {});

    // ---- lifecycle (each takes the grant the policy minted for executing it) ----
    // Generates version N+1 inside the HSM (attribute check and self-test), published as
    // pre-active until now + publish_ahead, then activated by activate_due(); with no
    // publish-ahead it becomes active at once. Errors: conflict if a pre-active version is
    // already waiting; not_found if the key has no version at all (bootstrap first).
    [[nodiscard]] core::Result<KeyVersion> rotate(
        const core::Grant<core::action::KeyLifecycleExecute>& grant, crypto::Algorithm alg,
        const Timing& timing, core::TimePoint now, const TransitionHook& hook);
    // Retires a pre-active or active version: it stops signing at once and stays published
    // until now + max_validity + verify_grace. Retiring the active version leaves the key
    // without a signing version until the next rotation. Errors: not_found, conflict (already
    // retired or destroyed).
    [[nodiscard]] core::Result<KeyVersion> retire(
        const core::Grant<core::action::KeyLifecycleExecute>& grant, unsigned version,
        const Timing& timing, core::TimePoint now, const TransitionHook& hook);
    // Destroys the private key object in the HSM; the version leaves the JWKS. Refused
    // (conflict) for the active version and for a retired version still inside its
    // verify-until time, unless force is set (the caller checks that the policy allows it).
    [[nodiscard]] core::Result<KeyVersion> destroy(
        const core::Grant<core::action::KeyLifecycleExecute>& grant, unsigned version, bool force,
        core::TimePoint now, const TransitionHook& hook);
    // Activates every pre-active version whose time has come; the previously active version
    // of that key is retired. timing_for gives each key's timing (nullopt: leave it alone).
    [[nodiscard]] core::Status activate_due(
        core::TimePoint now,
        const std::function<std::optional<Timing>(std::string_view)>& timing_for,
        const TransitionHook& hook);

    // The active version of a key, from the snapshot.
    [[nodiscard]] core::Result<KeyVersion> active(std::string_view name) const;
    // Every version of one key (sorted by version), or of every key (sorted by name, version).
    [[nodiscard]] std::vector<KeyVersion> versions(std::string_view name) const;
    [[nodiscard]] std::vector<KeyVersion> all_versions() const;
    // Versions verifiers must accept at `now` (pre-active, active, retired until verify_until).
    [[nodiscard]] std::vector<KeyVersion> published(core::TimePoint now) const;

  private:
    struct Snapshot {
        std::map<std::string, std::vector<KeyVersion>, std::less<>> keys;
        std::map<std::string, hsm::KeyRef, std::less<>> active_refs;  // by key name
        std::map<std::string, KeyVersion, std::less<>> active;        // by key name
    };

    [[nodiscard]] core::Status refresh_locked();
    [[nodiscard]] core::Status write_record(const std::string& key_label, const VersionRecord& r);
    [[nodiscard]] core::Result<KeyVersion> find_version(std::string_view name,
                                                        unsigned version) const;
    // Activates v (and retires the current active one) under the sign gate.
    [[nodiscard]] core::Status activate_locked(const KeyVersion& v, const Timing& timing,
                                               core::TimePoint now, const TransitionHook& hook);
    [[nodiscard]] std::shared_ptr<const Snapshot> snapshot() const noexcept {
        return snapshot_.load(std::memory_order_acquire);
    }

    std::shared_ptr<hsm::Token> token_;
    KidFunction kid_;
    std::mutex mutex_;  // serializes refresh and changes
    // Signers hold it shared from choosing the version until their on_signed returned;
    // state changes that stop a version from signing hold it exclusively.
    std::shared_mutex sign_gate_;
    std::map<std::string, std::shared_ptr<const crypto::PublicKey>> public_keys_;  // by label
    std::map<std::string, hsm::KeyRef> loaded_refs_;                               // by label
    std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
};

// "licentra/<name>/v<N>/state"
[[nodiscard]] std::string state_label(std::string_view key_label);

}  // namespace licentra::keys
