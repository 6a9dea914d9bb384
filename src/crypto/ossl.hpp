// One deleter per OpenSSL type, so no *_free call appears outside this file and ossl.cpp (which
// holds the deleters of ossl_fwd.hpp, for headers that keep OpenSSL out of their includers).
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "crypto/ossl_fwd.hpp"

namespace licentra::crypto {

template <auto Fn>
struct OsslDeleter {
    template <typename T>
    void operator()(T* p) const noexcept {
        Fn(p);
    }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OsslDeleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OsslDeleter<EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OsslDeleter<EVP_MD_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, OsslDeleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OsslDeleter<BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OsslDeleter<ECDSA_SIG_free>>;
using X509Ptr = std::unique_ptr<X509, OsslDeleter<X509_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OsslDeleter<GENERAL_NAMES_free>>;
using OsslParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OsslDeleter<OSSL_PARAM_BLD_free>>;
using OsslParamPtr = std::unique_ptr<OSSL_PARAM, OsslDeleter<OSSL_PARAM_free>>;

// Buffers OpenSSL allocates for the caller (i2d_* output, ASN1_STRING_to_UTF8).
struct OsslFree {
    void operator()(void* p) const noexcept { OPENSSL_free(p); }
};
using OsslBytesPtr = std::unique_ptr<unsigned char, OsslFree>;

// The newest OpenSSL error queue entry as text, and the queue cleared. Never contains secrets:
// OpenSSL error strings name functions and reasons only.
[[nodiscard]] std::string last_openssl_error();

}  // namespace licentra::crypto
