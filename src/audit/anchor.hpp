// Interfaces through which the audit log reaches the HSM without linking it. app/wiring
// implements them on an hsm::Token; tests use in-process implementations.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "audit/pseudonym_epoch.hpp"
#include "core/bytes.hpp"
#include "core/result.hpp"
#include "crypto/digest.hpp"

namespace licentra::audit {

// Keeps the newest signed checkpoint somewhere an attacker who can rewrite the log directory
// cannot roll back (a CKO_DATA object on the HSM token). At open the log refuses to start if its
// tree does not contain the anchored checkpoint.
class CheckpointAnchor {
  public:
    virtual ~CheckpointAnchor() = default;
    // The stored signed note, or nullopt if none was ever stored. Errors are reported as the
    // implementation's (e.g. hsm_unavailable); the log then refuses to open.
    [[nodiscard]] virtual core::Result<std::optional<std::string>> load() = 0;
    // Replaces the stored note. Called from the log's writer thread only.
    [[nodiscard]] virtual core::Status store(std::string_view note) = 0;
};

// Keyed pseudonyms for claim values the policy names for recording: HMAC-SHA256 with a key that
// never leaves the HSM, so the log links equal values without revealing them.
class Pseudonymizer {
  public:
    virtual ~Pseudonymizer() = default;
    // HMAC-SHA256(key, data) with the deployment's single key. Thread-safe.
    [[nodiscard]] virtual core::Result<crypto::Sha256Digest> hmac_sha256(core::ByteView data) = 0;
    // HMAC-SHA256 with the key of `epoch` (audit/pseudonym_epoch.hpp), created on first use.
    // Errors: hsm errors; not_found "audit.epoch_destroyed" once the epoch's key was destroyed
    // (it is never created again). Thread-safe. The default has no epoch keys.
    [[nodiscard]] virtual core::Result<crypto::Sha256Digest> hmac_sha256(
        const PseudonymEpoch& epoch, core::ByteView data) {
        (void)data;
        return core::make_error(core::ErrorKind::internal, "audit.no_epoch_keys",
                                "no key store for pseudonym epoch " + epoch.name());
    }
};

// The HSM object labels the wiring uses (docs/audit.md).
inline constexpr std::string_view kPseudonymKeyLabel = "licentra/pseudonym/v1";
inline constexpr std::string_view kCheckpointAnchorLabelPrefix = "licentra/audit-checkpoint/";

}  // namespace licentra::audit
