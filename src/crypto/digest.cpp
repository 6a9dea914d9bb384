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

// The algorithm fetched from the default provider once per process. EVP_sha256() is only a
// name under OpenSSL 3: every init with it fetches the implementation again, under the
// provider store's lock, which cost more than hashing a Merkle node. A fetched EVP_MD is
// immutable and may be used from any thread; it is kept for the life of the process.
const EVP_MD* fetched(const char* name) {
    EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
    if (md == nullptr) std::abort();  // a broken OpenSSL install: nothing safe to return
    return md;
}

const EVP_MD* sha256_md() {
    static const EVP_MD* const md = fetched("SHA2-256");
    return md;
}

const EVP_MD* sha384_md() {
    static const EVP_MD* const md = fetched("SHA2-384");
    return md;
}

}  // namespace

Sha256Digest sha256(core::ByteView data) { return one_shot<32>(sha256_md(), data); }
Sha384Digest sha384(core::ByteView data) { return one_shot<48>(sha384_md(), data); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_.get(), sha256_md(), nullptr) != 1) {
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
    EVP_DigestInit_ex(ctx_.get(), sha256_md(), nullptr);
    return out;
}

}  // namespace licentra::crypto
