// Owning pointers to OpenSSL objects for headers that keep OpenSSL's headers out of their
// includers: the types are only declared here, and the deleters are defined in ossl.cpp beside
// every other deleter (crypto/ossl.hpp).
#pragma once

#include <memory>

typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace licentra::crypto {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const noexcept;
};
struct MdCtxFree {
    void operator()(EVP_MD_CTX* p) const noexcept;
};

using OpaquePkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using OpaqueMdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

}  // namespace licentra::crypto
