// What the key lifecycle needs from the token, and nothing more: the narrow interface that
// KeyManager works against. The daemon passes the HSM token (hsm_key_store); the unit tests
// pass an in-memory store that can fail any call (tests/unit/keys).
//
// Every member has the contract of the hsm::Token member of the same name (hsm/hsm.hpp):
// records are append-only CKO_DATA objects, key pairs are told apart by label and CKA_ID, and
// errors carry the hsm error kinds and codes. Implementations are thread-safe.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "crypto/algorithm.hpp"
#include "crypto/public_key.hpp"
#include "hsm/hsm.hpp"

namespace licentra::keys {

class KeyStore {
  public:
    virtual ~KeyStore() = default;

    // ---- key pairs ----
    [[nodiscard]] virtual core::Result<hsm::KeyRef> generate_key(
        const hsm::GenerateCapability& capability, unsigned version, crypto::Algorithm alg) = 0;
    [[nodiscard]] virtual core::Result<hsm::KeyRef> load_key(const std::string& label,
                                                             const core::Bytes* id) = 0;
    [[nodiscard]] virtual core::Result<std::vector<hsm::KeyInfo>> list_keys(
        const std::string& prefix) = 0;
    [[nodiscard]] virtual core::Result<bool> label_exists(const std::string& label) = 0;
    [[nodiscard]] virtual core::Result<std::vector<core::Result<crypto::PublicKey>>> public_keys(
        const std::vector<std::pair<std::string, core::Bytes>>& pairs) = 0;
    [[nodiscard]] virtual core::Status destroy_private_key(const hsm::DestroyCapability& capability,
                                                           const std::string& label,
                                                           const core::Bytes* id) = 0;
    [[nodiscard]] virtual core::Result<core::Bytes> sign(const hsm::SignCapability& capability,
                                                         const hsm::KeyRef& key,
                                                         core::ByteView message) = 0;

    // ---- append-only records ----
    [[nodiscard]] virtual core::Status create_data(const std::string& label,
                                                   core::ByteView value) = 0;
    [[nodiscard]] virtual core::Status delete_data(const std::string& label) = 0;
    [[nodiscard]] virtual core::Result<std::vector<std::pair<std::string, core::Bytes>>> list_data(
        const std::string& prefix) = 0;

    // Has the store read the token from scratch (a view that stopped matching it).
    virtual void reload_view() = 0;
};

// The HSM token as a KeyStore. Precondition: token is not null.
[[nodiscard]] std::shared_ptr<KeyStore> hsm_key_store(std::shared_ptr<hsm::Token> token);

}  // namespace licentra::keys
