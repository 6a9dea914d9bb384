// Adapters from the audit log's interfaces to the HSM token:
//   - HsmCheckpointAnchor: the newest signed checkpoint in a CKO_DATA object
//     "licentra/audit-checkpoint/<origin>" (one per daemon, since each has its own origin);
//   - HsmPseudonymizer: HMAC-SHA256 with the generic secret key "licentra/pseudonym/v1",
//     computed inside the token (CKM_SHA256_HMAC);
//   - make_audit_signer: the checkpoint key "licentra/audit/v<N>" (Ed25519 or ES256) as a
//     crypto::Signer.
// All are thread-safe as hsm::Token is.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "audit/anchor.hpp"
#include "hsm/hsm.hpp"

namespace licentra::app::wiring {

class HsmCheckpointAnchor final : public audit::CheckpointAnchor {
  public:
    HsmCheckpointAnchor(std::shared_ptr<hsm::Token> token, const std::string& origin);
    [[nodiscard]] core::Result<std::optional<std::string>> load() override;
    [[nodiscard]] core::Status store(std::string_view note) override;
    [[nodiscard]] const std::string& label() const noexcept { return label_; }

  private:
    std::shared_ptr<hsm::Token> token_;
    std::string label_;
};

class HsmPseudonymizer final : public audit::Pseudonymizer {
  public:
    explicit HsmPseudonymizer(std::shared_ptr<hsm::Token> token,
                              std::string key_label = std::string(audit::kPseudonymKeyLabel));
    // Creates the HMAC key on the token unless it exists (and checks an existing one).
    [[nodiscard]] core::Status ensure_key();
    // HMACs are remembered in a bounded in-memory cache keyed by SHA-256 of the input, so a
    // recurring claim value (a customer id) costs one HSM operation, not one per token, and
    // the cache never holds the values themselves. Thread-safe.
    [[nodiscard]] core::Result<crypto::Sha256Digest> hmac_sha256(core::ByteView data) override;
    // Under the epoch's key "licentra/pseudonym/e<start>-<length>", created on first use while
    // the epoch lasts; for an ended epoch whose key is gone: not_found hsm.key_not_found.
    [[nodiscard]] core::Result<crypto::Sha256Digest> hmac_sha256(const audit::PseudonymEpoch& epoch,
                                                                 core::ByteView data) override;

    // Periodic care of the epoch keys at `now` (every replica, every refresh): creates the
    // current and the next epoch's keys ahead of use (and re-resolves a key two daemons
    // created at once), and destroys every epoch key whose epoch ended `retention` ago or
    // earlier. Returns the epochs whose keys this call destroyed (another daemon that
    // destroyed one first reports it instead), for the audit log.
    [[nodiscard]] core::Result<std::vector<audit::PseudonymEpoch>> maintain(
        core::TimePoint now, std::chrono::seconds epoch, std::chrono::seconds retention);

    static constexpr std::size_t kCacheEntries = 65536;

  private:
    [[nodiscard]] core::Result<crypto::Sha256Digest> mac_with(const std::string& label,
                                                              core::ByteView data);

    std::shared_ptr<hsm::Token> token_;
    std::string label_;
    std::mutex cache_mutex_;
    // key: the key's label, NUL, raw SHA-256 of the input
    std::unordered_map<std::string, crypto::Sha256Digest> cache_;
    std::set<std::string> ensured_;  // epoch keys created or found (guarded by cache_mutex_)
};

// Loads licentra/audit/v<version> and checks that it is Ed25519 or ES256 (ECDSA P-256), the
// signed-note signature types 0x01 and 0x02 the checkpoints use. capability: for key "audit"
// (keys::Capabilities::checkpoints).
[[nodiscard]] core::Result<std::unique_ptr<hsm::HsmSigner>> make_audit_signer(
    std::shared_ptr<hsm::Token> token, unsigned version, hsm::SignCapability capability);

}  // namespace licentra::app::wiring
