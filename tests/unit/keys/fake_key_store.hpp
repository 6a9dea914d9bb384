// A key store in memory for unit tests of the key lifecycle and the use cases above it: key
// pairs are Ed25519 keys made by OpenSSL (the test's stand-in for the HSM), data records a
// map; fail(call, n, error) makes the n-th next call of that name fail once.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "crypto/ossl.hpp"
#include "crypto/random.hpp"
#include "keys/key_store.hpp"

namespace licentra::keys::test {

using core::ErrorKind;

class FakeKeyStore final : public KeyStore {
  public:
    struct Pair {
        std::string label;
        std::string name;
        unsigned version = 0;
        core::Bytes id;
        core::Bytes spki;
        crypto::EvpPkeyPtr key;
        bool has_private = true;
    };

    void fail(const std::string& call, int nth, core::Error error) {
        std::lock_guard lock(mu_);
        faults_[call] = {nth, std::move(error)};
    }
    int calls(const std::string& call) {
        std::lock_guard lock(mu_);
        return counts_[call];
    }
    bool has_private(const std::string& label) {
        std::lock_guard lock(mu_);
        return std::any_of(pairs_.begin(), pairs_.end(),
                           [&](const Pair& p) { return p.label == label && p.has_private; });
    }
    // The module loses the private object of a pair (or never wrote it whole): it is no
    // longer listed or loadable; handles taken before keep working, as a module's own
    // in-memory copy can.
    void lose_private(const std::string& label) {
        std::lock_guard lock(mu_);
        for (auto& p : pairs_) {
            if (p.label == label) p.has_private = false;
        }
    }
    std::size_t pairs(const std::string& label) {
        std::lock_guard lock(mu_);
        return static_cast<std::size_t>(std::count_if(
            pairs_.begin(), pairs_.end(), [&](const Pair& p) { return p.label == label; }));
    }

    core::Result<hsm::KeyRef> generate_key(const hsm::GenerateCapability& capability,
                                           unsigned version, crypto::Algorithm alg) override {
        std::lock_guard lock(mu_);
        if (auto e = fault("generate_key")) return *e;
        const std::string& name = capability.key();
        auto label = hsm::key_label(name, version);
        if (!label) return label.error();
        if (taken(*label)) {
            return core::make_error(ErrorKind::conflict, "hsm.label_exists", *label);
        }
        if (alg != crypto::Algorithm::EdDSA) {
            return core::make_error(ErrorKind::usage, "fake.algorithm", "EdDSA only");
        }
        Pair p;
        p.label = *label;
        p.name = name;
        p.version = version;
        p.id = crypto::random_bytes(16).value();
        p.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
        unsigned char* der = nullptr;
        const int len = i2d_PUBKEY(p.key.get(), &der);
        const crypto::OsslBytesPtr owned(der);
        p.spki.assign(der, der + len);
        pairs_.push_back(std::move(p));
        return ref_of(pairs_.back());
    }
    core::Result<hsm::KeyRef> load_key(const std::string& label, const core::Bytes* id) override {
        std::lock_guard lock(mu_);
        if (auto e = fault("load_key")) return *e;
        for (const auto& p : pairs_) {
            if (p.label == label && (id == nullptr || p.id == *id) && p.has_private) {
                return ref_of(p);
            }
        }
        return core::make_error(ErrorKind::not_found, "hsm.key_not_found", label);
    }
    core::Result<std::vector<hsm::KeyInfo>> list_keys(const std::string& prefix) override {
        std::lock_guard lock(mu_);
        if (auto e = fault("list_keys")) return *e;
        std::vector<hsm::KeyInfo> out;
        for (const auto& p : pairs_) {
            if (p.label.rfind(prefix, 0) != 0) continue;
            out.push_back({p.label, p.name, p.version, crypto::Algorithm::EdDSA,
                           core::hex_encode(p.id), p.has_private, true});
        }
        std::sort(out.begin(), out.end(),
                  [](const auto& a, const auto& b) { return a.label < b.label; });
        return out;
    }
    core::Result<bool> label_exists(const std::string& label) override {
        std::lock_guard lock(mu_);
        if (auto e = fault("label_exists")) return *e;
        return taken(label);
    }
    core::Result<std::vector<core::Result<crypto::PublicKey>>> public_keys(
        const std::vector<std::pair<std::string, core::Bytes>>& asked) override {
        std::lock_guard lock(mu_);
        if (auto e = fault("public_keys")) return *e;
        std::vector<core::Result<crypto::PublicKey>> out;
        for (const auto& [label, id] : asked) {
            auto it = std::find_if(pairs_.begin(), pairs_.end(),
                                   [&](const Pair& p) { return p.label == label && p.id == id; });
            if (it == pairs_.end()) {
                out.emplace_back(
                    core::make_error(ErrorKind::not_found, "hsm.key_not_found", label));
            } else {
                out.emplace_back(
                    crypto::PublicKey::from_spki_der(crypto::Algorithm::EdDSA, it->spki));
            }
        }
        return out;
    }
    core::Status destroy_private_key(const hsm::DestroyCapability& capability,
                                     const std::string& label, const core::Bytes* id) override {
        std::lock_guard lock(mu_);
        if (auto e = fault("destroy_private_key")) return *e;
        auto parsed = hsm::parse_key_label(label);
        if (!parsed) return parsed.error();
        if (auto e = mismatch(capability.key(), parsed->first)) return *e;
        bool found = false;
        for (auto& p : pairs_) {
            if (p.label == label && (id == nullptr || p.id == *id) && p.has_private) {
                p.has_private = false;
                found = true;
            }
        }
        if (!found) return core::make_error(ErrorKind::not_found, "hsm.key_not_found", label);
        return {};
    }
    core::Result<core::Bytes> sign(const hsm::SignCapability& capability, const hsm::KeyRef& key,
                                   core::ByteView message) override {
        std::lock_guard lock(mu_);
        if (auto e = fault("sign")) return *e;
        if (auto e = mismatch(capability.key(), key.name)) return *e;
        for (const auto& p : pairs_) {
            if (p.label != key.label || p.id != key.id || !p.has_private) continue;
            crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
            core::Bytes sig(64);
            std::size_t len = sig.size();
            if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, p.key.get()) != 1 ||
                EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1) {
                return core::make_error(ErrorKind::internal, "fake.sign", "OpenSSL failed");
            }
            return sig;
        }
        return core::make_error(ErrorKind::not_found, "hsm.key_not_found", key.label);
    }
    core::Status create_data(const std::string& label, core::ByteView value) override {
        std::lock_guard lock(mu_);
        if (auto e = fault("create_data")) return *e;
        data_[label] = core::Bytes(value.begin(), value.end());
        return {};
    }
    core::Status delete_data(const std::string& label) override {
        std::lock_guard lock(mu_);
        if (auto e = fault("delete_data")) return *e;
        data_.erase(label);
        return {};
    }
    core::Result<std::vector<std::pair<std::string, core::Bytes>>> list_data(
        const std::string& prefix) override {
        std::lock_guard lock(mu_);
        if (auto e = fault("list_data")) return *e;
        std::vector<std::pair<std::string, core::Bytes>> out;
        for (const auto& [label, value] : data_) {
            if (label.rfind(prefix, 0) == 0) out.emplace_back(label, value);
        }
        return out;
    }
    void reload_view() override {
        std::lock_guard lock(mu_);
        ++counts_["reload_view"];
    }

  private:
    std::optional<core::Error> fault(const std::string& call) {
        ++counts_[call];
        auto it = faults_.find(call);
        if (it == faults_.end() || --it->second.first > 0) return std::nullopt;
        core::Error e = std::move(it->second.second);
        faults_.erase(it);
        return e;
    }
    // As the token: a capability works only for the key it names.
    static std::optional<core::Error> mismatch(const std::string& granted,
                                               const std::string& name) {
        if (granted == name) return std::nullopt;
        return core::make_error(ErrorKind::usage, "hsm.capability_mismatch", granted + " " + name);
    }
    bool taken(const std::string& label) const {
        return data_.count(label) != 0 ||
               std::any_of(pairs_.begin(), pairs_.end(),
                           [&](const Pair& p) { return p.label == label; });
    }
    static hsm::KeyRef ref_of(const Pair& p) {
        hsm::KeyRef r;
        r.label = p.label;
        r.name = p.name;
        r.version = p.version;
        r.algorithm = crypto::Algorithm::EdDSA;
        r.public_key = std::make_shared<const crypto::PublicKey>(
            crypto::PublicKey::from_spki_der(crypto::Algorithm::EdDSA, p.spki).value());
        r.id = p.id;
        return r;
    }

    std::mutex mu_;
    std::vector<Pair> pairs_;
    std::map<std::string, core::Bytes> data_;
    std::map<std::string, std::pair<int, core::Error>> faults_;
    std::map<std::string, int> counts_;
};

}  // namespace licentra::keys::test
