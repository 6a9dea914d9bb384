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
    return mac_with(label_, data);
}

core::Result<crypto::Sha256Digest> HsmPseudonymizer::hmac_sha256(const audit::PseudonymEpoch& epoch,
                                                                 core::ByteView data) {
    const std::string label = epoch.label();
    bool known = false;
    {
        std::lock_guard lock(cache_mutex_);
        known = ensured_.count(label) != 0;
    }
    // A key is only ever created for an epoch that has not ended: an ended epoch's key that
    // is gone was destroyed, and its pseudonyms must stay impossible to recompute.
    if (!known && epoch.end() > core::Clock::now()) {
        if (auto st = token_->ensure_hmac_key(label); !st) return std::move(st).error();
        std::lock_guard lock(cache_mutex_);
        ensured_.insert(label);
    }
    return mac_with(label, data);
}

core::Result<std::vector<audit::PseudonymEpoch>> HsmPseudonymizer::maintain(
    core::TimePoint now, std::chrono::seconds epoch, std::chrono::seconds retention) {
    const audit::PseudonymEpoch current = audit::epoch_at(now, epoch);
    for (const auto& e : {current, current.next()}) {
        if (auto st = token_->ensure_hmac_key(e.label()); !st) return std::move(st).error();
        std::lock_guard lock(cache_mutex_);
        ensured_.insert(e.label());
    }
    auto labels = token_->list_hmac_keys(std::string(audit::kPseudonymLabelPrefix) + "e");
    if (!labels) return std::move(labels).error();
    std::vector<audit::PseudonymEpoch> destroyed;
    for (const auto& label : *labels) {
        auto e = audit::PseudonymEpoch::from_label(label);
        // An epoch of another length (the policy changed) keeps its own end; the retention
        // in force applies to every epoch.
        if (!e || e->destroy_at(retention) > now) continue;
        auto n = token_->destroy_hmac_key(label);
        if (!n) return std::move(n).error();
        if (*n > 0) destroyed.push_back(*e);
    }
    // No pseudonym of an epoch past retention is answered from memory either, whoever
    // destroyed its key (another daemon's maintenance may have come first).
    std::lock_guard lock(cache_mutex_);
    const auto due = [&](std::string_view label) {
        auto e = audit::PseudonymEpoch::from_label(label);
        return e && e->destroy_at(retention) <= now;
    };
    std::erase_if(ensured_, [&](const std::string& label) { return due(label); });
    std::erase_if(cache_, [&](const auto& item) {
        return due(std::string_view(item.first).substr(0, item.first.find('\0')));
    });
    return destroyed;
}

core::Result<crypto::Sha256Digest> HsmPseudonymizer::mac_with(const std::string& label,
                                                              core::ByteView data) {
    const auto digest = crypto::sha256(data);
    std::string cache_key = label;
    cache_key.push_back('\0');
    cache_key.append(reinterpret_cast<const char*>(digest.data()), digest.size());
    {
        std::lock_guard lock(cache_mutex_);
        if (auto it = cache_.find(cache_key); it != cache_.end()) return it->second;
    }
    auto mac = token_->hmac_sha256(label, data);
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
                                                                unsigned version,
                                                                hsm::SignCapability capability) {
    auto key = token->load_key("audit", version);
    if (!key) return std::move(key).error();
    if (key->algorithm != crypto::Algorithm::EdDSA && key->algorithm != crypto::Algorithm::ES256) {
        return core::make_error(core::ErrorKind::usage, "audit.signer_invalid",
                                "the audit key " + key->label + " is neither Ed25519 nor ES256");
    }
    return std::make_unique<hsm::HsmSigner>(std::move(token), std::move(key).value(),
                                            std::move(capability));
}

}  // namespace licentra::app::wiring
