#include "hsm/hsm.hpp"

namespace licentra::hsm {

HsmSigner::HsmSigner(std::shared_ptr<Token> token, KeyRef key, SignCapability capability)
    : token_(std::move(token)), key_(std::move(key)), capability_(std::move(capability)) {}

core::Result<core::Bytes> HsmSigner::sign(core::ByteView message) {
    return token_->sign(capability_, key_, message);
}

}  // namespace licentra::hsm
