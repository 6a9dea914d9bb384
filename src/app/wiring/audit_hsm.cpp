#include "app/wiring/audit_hsm.hpp"

#include <algorithm>

namespace licentra::app::wiring {

HsmCheckpointAnchor::HsmCheckpointAnchor(std::shared_ptr<hsm::Token> token,
                                         const std::string& origin)
    : token_(std::move(token)), label_(std::string(audit::kCheckpointAnchorLabelPrefix) + origin) {}

core::Result<std::optional<std::string>> HsmCheckpointAnchor::load() {
    auto data = token_->read_data(label_);
    if (!data) return std::move(data).error();
    if (!*data) return std::optional<std::string>{};
    return std::optional<std::string>(std::string(core::as_chars(**data)));
}

core::Status HsmCheckpointAnchor::store(std::string_view note) {
    return token_->write_data(label_, core::as_bytes(note));
}

HsmPseudonymizer::HsmPseudonymizer(std::shared_ptr<hsm::Token> token, std::string key_label)
    : token_(std::move(token)), label_(std::move(key_label)) {}

core::Status HsmPseudonymizer::ensure_key() { return token_->ensure_hmac_key(label_); }

core::Result<crypto::Sha256Digest> HsmPseudonymizer::hmac_sha256(core::ByteView data) {
    const auto digest = crypto::sha256(data);
    std::string cache_key(reinterpret_cast<const char*>(digest.data()), digest.size());
    {
        std::lock_guard lock(cache_mutex_);
        if (auto it = cache_.find(cache_key); it != cache_.end()) return it->second;
    }
    auto mac = token_->hmac_sha256(label_, data);
    if (!mac) return std::move(mac).error();
    if (mac->size() != 32) {
        return core::make_error(core::ErrorKind::internal, "audit.hmac_size",
                                "HMAC-SHA256 from the HSM is not 32 bytes");
    }
    crypto::Sha256Digest out{};
    std::copy(mac->begin(), mac->end(), out.begin());
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kCacheEntries) cache_.clear();  // bounded; refills from the HSM
    cache_.emplace(std::move(cache_key), out);
    return out;
}

core::Result<std::unique_ptr<hsm::HsmSigner>> make_audit_signer(std::shared_ptr<hsm::Token> token,
                                                                unsigned version) {
    auto key = token->load_key("audit", version);
    if (!key) return std::move(key).error();
    if (key->algorithm != crypto::Algorithm::EdDSA && key->algorithm != crypto::Algorithm::ES256) {
        return core::make_error(core::ErrorKind::usage, "audit.signer_invalid",
                                "the audit key " + key->label + " is neither Ed25519 nor ES256");
    }
    return std::make_unique<hsm::HsmSigner>(std::move(token), std::move(key).value());
}

}  // namespace licentra::app::wiring
