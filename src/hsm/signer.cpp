#include "hsm/hsm.hpp"

namespace licentra::hsm {

HsmSigner::HsmSigner(std::shared_ptr<Token> token, KeyRef key)
    : token_(std::move(token)), key_(std::move(key)) {}

core::Result<core::Bytes> HsmSigner::sign(core::ByteView message) {
    return token_->sign(key_, message);
}

}  // namespace licentra::hsm
