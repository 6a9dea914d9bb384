#include "crypto/digest.hpp"

#include <openssl/evp.h>

#include <cstdlib>

namespace licentra::crypto {
namespace {

template <std::size_t N>
std::array<std::uint8_t, N> one_shot(const EVP_MD* md, core::ByteView data) {
    std::array<std::uint8_t, N> out{};
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1 || len != N) {
        std::abort();  // digest failure means a broken OpenSSL install: nothing safe to return
    }
    return out;
}

}  // namespace

Sha256Digest sha256(core::ByteView data) { return one_shot<32>(EVP_sha256(), data); }
Sha384Digest sha384(core::ByteView data) { return one_shot<48>(EVP_sha384(), data); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
        std::abort();
    }
}

Sha256::~Sha256() = default;

Sha256& Sha256::update(core::ByteView data) {
    EVP_DigestUpdate(ctx_.get(), data.data(), data.size());
    return *this;
}

Sha256& Sha256::update(std::uint8_t byte) {
    EVP_DigestUpdate(ctx_.get(), &byte, 1);
    return *this;
}

Sha256Digest Sha256::finish() {
    Sha256Digest out{};
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), out.data(), &len);
    EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr);
    return out;
}

}  // namespace licentra::crypto
