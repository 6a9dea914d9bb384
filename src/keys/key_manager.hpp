// Key lifecycle on the HSM token: versions, their states, and signing with the active one.
//
// The token is the one source of truth and the only state replicas share. Each key version is
// a key pair labelled "licentra/<name>/v<N>" plus append-only records next to it (see
// keys/key_records.hpp and docs/adr/0004-shared-state-on-the-token.md); a version's state is
// a deterministic fold over those records, so every daemon computes the same state from the
// same token. Each daemon keeps a snapshot that refresh() rebuilds; the daemon refreshes
// periodically, so every daemon sees the others' changes within one refresh interval.
//
// States (DESIGN.md "Key lifecycle"):
//   pre-active  published in the JWKS, not yet signing (at least min_pre_active, so every
//               replica publishes a version before any replica signs with it)
//   active      exactly one per key name signs
//   retired     no longer signs; published until verify_until
//   destroyed   private object destroyed; no longer published
//
// Thread-safety: every member is thread-safe. Readers work on an immutable snapshot
// (lock-free); changes are serialized by an internal mutex within a daemon and by claims
// (keys/claim.hpp) across daemons.
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
#include "keys/claim.hpp"
#include "keys/key_store.hpp"

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

// The content of a retired or destroyed record (keys/key_records.hpp).
struct EventRecordData {
    std::int64_t at_ms = 0;
    std::optional<std::int64_t> verify_until_ms;
};

// One key version as the daemon sees it.
struct KeyVersion {
    std::string name;
    std::string label;   // "licentra/<name>/v<N>"
    std::string id_hex;  // CKA_ID of its key pair
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

class KeyManager;

// The right to sign with one key's active version, for as long as the lease lives: it holds the
// signing gate shared, so no lifecycle change can stop this version from signing until the
// lease is released (destroyed). A caller that queues a token's audit entry before releasing
// the lease orders that entry before the change's own. Move-only; obtained from
// KeyManager::lease.
class SigningLease {
  public:
    SigningLease(SigningLease&&) noexcept = default;
    SigningLease& operator=(SigningLease&&) noexcept = default;
    SigningLease(const SigningLease&) = delete;
    SigningLease& operator=(const SigningLease&) = delete;
    ~SigningLease() = default;

    // The version that signs (its kid and algorithm go into the JWS header).
    [[nodiscard]] const KeyVersion& version() const noexcept { return *version_; }
    // A signature of `input` inside the HSM with the leased version. Errors: hsm errors.
    [[nodiscard]] core::Result<core::Bytes> sign(core::ByteView input) const;

  private:
    friend class KeyManager;
    SigningLease() = default;

    std::shared_lock<std::shared_mutex> gate_;
    std::shared_ptr<const void> snapshot_;  // keeps version_ and key_ alive
    const KeyVersion* version_ = nullptr;
    const hsm::KeyRef* key_ = nullptr;
    KeyStore* store_ = nullptr;
    std::optional<hsm::SignCapability> capability_;  // from the token.sign grant
};

// What the use cases need of the key lifecycle, and nothing more: the narrow interface the
// service works against (service::Dependencies::keys). The daemon passes its KeyManager. Every
// member has the contract of the KeyManager member of the same name. Thread-safe.
class Keyring {
  public:
    virtual ~Keyring() = default;

    virtual void set_observer(TransitionHook observer) = 0;
    [[nodiscard]] virtual core::Result<std::optional<KeyVersion>> bootstrap(
        const core::Grant<core::action::KeyLifecycleExecute>& grant, crypto::Algorithm alg) = 0;
    [[nodiscard]] virtual core::Result<SigningLease> lease(
        const core::Grant<core::action::TokenSign>& grant) = 0;
    [[nodiscard]] virtual core::Result<KeyVersion> rotate(
        const core::Grant<core::action::KeyLifecycleExecute>& grant, crypto::Algorithm alg,
        const Timing& timing, core::TimePoint now, const TransitionHook& hook,
        const std::string& request = {}) = 0;
    [[nodiscard]] virtual core::Result<KeyVersion> retire(
        const core::Grant<core::action::KeyLifecycleExecute>& grant, unsigned version,
        const Timing& timing, core::TimePoint now, const TransitionHook& hook) = 0;
    [[nodiscard]] virtual core::Result<KeyVersion> destroy(
        const core::Grant<core::action::KeyLifecycleExecute>& grant, unsigned version, bool force,
        core::TimePoint now, const TransitionHook& hook) = 0;
    // The daemon's own read of a key's versions (lifecycle decisions).
    [[nodiscard]] virtual std::vector<KeyVersion> versions(std::string_view name) const = 0;
    // A principal's read of one key's versions: the keys.read grant names the key.
    [[nodiscard]] std::vector<KeyVersion> versions(
        const core::Grant<core::action::KeysRead>& grant) const {
        return versions(grant.key());
    }
    [[nodiscard]] virtual std::vector<KeyVersion> published(core::TimePoint now) const = 0;
};

// How this daemon shares the token with other replicas.
struct ClusterOptions {
    std::string replica = "licentra-signd";  // names this daemon in the records it writes
    ClaimTiming claims;
    // A new version stays pre-active at least this long (two refresh intervals): every replica
    // publishes it before any signs with it.
    std::chrono::milliseconds min_pre_active{2000};
    // The operational log (one line per call); may be empty.
    std::function<void(std::string_view)> log;
    // How a claimer waits for the claims to settle (keys/claim.hpp); empty: the monotonic
    // clock. Tests of one process drive it instead of waiting.
    std::function<void(std::chrono::milliseconds)> wait;
    // The wall clock of refresh() and bootstrap(); empty: core::Clock::now. Tests inject the
    // clock their use cases read.
    std::function<core::TimePoint()> clock;
};

class KeyManager final : public Keyring {
  public:
    // Validates its dependencies and options. Errors: usage (no store, no kid function, an
    // empty replica name, claim timings that cannot work: a zero write bound or a stand-back
    // shorter than it). Call refresh() (or bootstrap()) before use.
    [[nodiscard]] static core::Result<std::unique_ptr<KeyManager>> create(
        std::shared_ptr<KeyStore> store, KidFunction kid, ClusterOptions options = {});
    KeyManager(const KeyManager&) = delete;
    KeyManager& operator=(const KeyManager&) = delete;

    // Called when a refresh finds that a key's active version changed (a pre-active version's
    // time came, on this or any replica): "key.activate" for the new one, then "key.retire"
    // for the one it superseded. Runs while signing is held off (see TransitionHook).
    void set_observer(TransitionHook observer) override;

    // Rebuilds the snapshot from the token at `now`: reads every record and key pair, folds
    // them, loads (attribute check and self-test) a newly active version and exports the public
    // keys of published versions not exported before, all of them in one pass over the token.
    [[nodiscard]] core::Status refresh();
    [[nodiscard]] core::Status refresh(core::TimePoint now);

    // Creates the first version of a key that has none, active at once, and returns it;
    // returns nullopt if the key already has a version or another replica created it first
    // (waits for that version up to a bound). Errors: conflict (another replica's creation did
    // not finish in time); hsm errors.
    [[nodiscard]] core::Result<std::optional<KeyVersion>> bootstrap(
        const core::Grant<core::action::KeyLifecycleExecute>& grant,
        crypto::Algorithm alg) override;

    // A lease on the active version of grant.key() (see SigningLease). Errors: conflict
    // keys.no_active_version.
    [[nodiscard]] core::Result<SigningLease> lease(
        const core::Grant<core::action::TokenSign>& grant) override;

    // ---- lifecycle (each takes the grant the policy minted for executing it) ----
    // Claims the next version number against every replica, generates the version inside the
    // HSM (attribute check and self-test) and records it, pre-active until
    // now + max(publish_ahead, min_pre_active); it then becomes active by time alone, on
    // every replica. request: the request id that ordered it ("" for scheduled rotations).
    // Errors: conflict if a pre-active version is already waiting or another replica is
    // creating the same version; not_found if the key has no version at all.
    [[nodiscard]] core::Result<KeyVersion> rotate(
        const core::Grant<core::action::KeyLifecycleExecute>& grant, crypto::Algorithm alg,
        const Timing& timing, core::TimePoint now, const TransitionHook& hook,
        const std::string& request = {}) override;
    // Retires a pre-active or active version: it stops signing at once and stays published
    // until now + max_validity + verify_grace. Retiring the active version leaves the key
    // without a signing version until the next rotation. Errors: not_found, conflict (already
    // retired or destroyed).
    [[nodiscard]] core::Result<KeyVersion> retire(
        const core::Grant<core::action::KeyLifecycleExecute>& grant, unsigned version,
        const Timing& timing, core::TimePoint now, const TransitionHook& hook) override;
    // Destroys the private key object in the HSM; the version leaves the JWKS. Refused
    // (conflict) for the active version and for a retired version still inside its
    // verify-until time, unless force is set (the caller checks that the policy allows it).
    // A version already destroyed is refused (conflict keys.bad_state) unless its private
    // object survived an earlier destroy that failed after writing its record: then this
    // destroy removes it.
    [[nodiscard]] core::Result<KeyVersion> destroy(
        const core::Grant<core::action::KeyLifecycleExecute>& grant, unsigned version, bool force,
        core::TimePoint now, const TransitionHook& hook) override;
    // The active version of a key, from the snapshot.
    [[nodiscard]] core::Result<KeyVersion> active(std::string_view name) const;
    // Every version of one key (sorted by version), or of every key (sorted by name, version).
    [[nodiscard]] std::vector<KeyVersion> versions(std::string_view name) const override;
    using Keyring::versions;  // and a principal's read, by its keys.read grant
    [[nodiscard]] std::vector<KeyVersion> all_versions() const;
    // Versions verifiers must accept at `now` (pre-active, active, retired until verify_until).
    [[nodiscard]] std::vector<KeyVersion> published(core::TimePoint now) const override;

  private:
    KeyManager(std::shared_ptr<KeyStore> store, KidFunction kid, ClusterOptions options);

    struct Snapshot {
        std::map<std::string, std::vector<KeyVersion>, std::less<>> keys;
        std::map<std::string, hsm::KeyRef, std::less<>> active_refs;  // by key name
        std::map<std::string, KeyVersion, std::less<>> active;        // by key name
        std::map<std::string, unsigned, std::less<>> highest;         // version numbers taken
    };

    // gate_held: the caller holds sign_gate_ exclusively already. Reads the state again (up to
    // three more times) while an object another replica is writing or destroying at this instant
    // vanishes between being listed and being read (hsm.object_gone): every caller, not only
    // the periodic refresh, would otherwise fail an operation for it.
    [[nodiscard]] core::Status refresh_locked(core::TimePoint now, bool gate_held = false);
    [[nodiscard]] core::Status read_state_locked(core::TimePoint now, bool gate_held);
    [[nodiscard]] core::Result<KeyVersion> find_version(std::string_view name,
                                                        unsigned version) const;
    // Claims version `version` of the capability's key and generates it; see rotate().
    [[nodiscard]] core::Result<KeyVersion> create_version(const hsm::GenerateCapability& capability,
                                                          unsigned version, crypto::Algorithm alg,
                                                          std::int64_t activate_at_ms,
                                                          std::int64_t supersede_verify_ms,
                                                          const std::string& request,
                                                          core::TimePoint now);
    // Writes one event record (retired/destroyed) under the version's label.
    [[nodiscard]] core::Status write_event(const std::string& prefix, const EventRecordData& e);
    [[nodiscard]] ClaimStorage claim_storage() const;
    void log(const std::string& line) const;
    [[nodiscard]] std::shared_ptr<const Snapshot> snapshot() const noexcept {
        return snapshot_.load(std::memory_order_acquire);
    }

    std::shared_ptr<KeyStore> store_;
    KidFunction kid_;
    ClusterOptions options_;
    TransitionHook observer_;
    std::mutex mutex_;  // serializes refresh and changes
    // Signing leases hold it shared from choosing the version until they are released;
    // state changes that stop a version from signing hold it exclusively.
    std::shared_mutex sign_gate_;
    // By "<label>#<CKA_ID hex>".
    std::map<std::string, std::shared_ptr<const crypto::PublicKey>> public_keys_;
    std::map<std::string, hsm::KeyRef> loaded_refs_;
    std::vector<std::string> warned_;  // fold warnings already logged
    bool observed_ = false;            // a first snapshot exists: later changes are transitions
    unsigned vanished_refreshes_ = 0;  // refreshes in a row that missed a known version
    std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
};

// "licentra/<name>/v<N>/state"
[[nodiscard]] std::string state_label(std::string_view key_label);

}  // namespace licentra::keys
