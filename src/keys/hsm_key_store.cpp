// The HSM token as the key lifecycle's store: every call goes straight to hsm::Token.
#include "keys/key_store.hpp"

namespace licentra::keys {
namespace {

class HsmKeyStore final : public KeyStore {
  public:
    explicit HsmKeyStore(std::shared_ptr<hsm::Token> token) : token_(std::move(token)) {}

    core::Result<hsm::KeyRef> generate_key(const hsm::GenerateCapability& capability,
                                           unsigned version, crypto::Algorithm alg) override {
        return token_->generate_key(capability, version, alg);
    }
    core::Result<hsm::KeyRef> load_key(const std::string& label, const core::Bytes* id) override {
        return token_->load_key(label, id);
    }
    core::Result<std::vector<hsm::KeyInfo>> list_keys(const std::string& prefix) override {
        return token_->list_keys(prefix);
    }
    core::Result<bool> label_exists(const std::string& label) override {
        return token_->label_exists(label);
    }
    core::Result<std::vector<core::Result<crypto::PublicKey>>> public_keys(
        const std::vector<std::pair<std::string, core::Bytes>>& pairs) override {
        return token_->public_keys(pairs);
    }
    core::Status destroy_private_key(const hsm::DestroyCapability& capability,
                                     const std::string& label, const core::Bytes* id) override {
        return token_->destroy_private_key(capability, label, id);
    }
    core::Result<core::Bytes> sign(const hsm::SignCapability& capability, const hsm::KeyRef& key,
                                   core::ByteView message) override {
        return token_->sign(capability, key, message);
    }
    core::Status create_data(const std::string& label, core::ByteView value) override {
        return token_->create_data(label, value);
    }
    core::Status delete_data(const std::string& label) override {
        return token_->delete_data(label);
    }
    core::Result<std::vector<std::pair<std::string, core::Bytes>>> list_data(
        const std::string& prefix) override {
        return token_->list_data(prefix);
    }
    void reload_view() override { token_->reload_view(); }

  private:
    std::shared_ptr<hsm::Token> token_;
};

}  // namespace

std::shared_ptr<KeyStore> hsm_key_store(std::shared_ptr<hsm::Token> token) {
    return std::make_shared<HsmKeyStore>(std::move(token));
}

}  // namespace licentra::keys
