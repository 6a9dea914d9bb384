#include "crypto/public_key.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include <climits>
#include <cstring>

#include "crypto/ecdsa.hpp"
#include "crypto/ossl.hpp"

namespace licentra::crypto {

using core::ErrorKind;
using core::make_error;

namespace {

constexpr int kMinRsaBits = 3072;

core::Error ossl_error(std::string_view what) {
    return make_error(ErrorKind::internal, "crypto.openssl",
                      std::string(what) + ": " + last_openssl_error());
}

std::string group_name(EVP_PKEY* pkey) {
    char name[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) !=
        1) {
        return {};
    }
    return std::string(name, len);
}

const char* curve_group(Curve c) { return c == Curve::P256 ? "prime256v1" : "secp384r1"; }

core::Status check_fits(Algorithm alg, EVP_PKEY* pkey) {
    auto mismatch = [&](std::string why) {
        return make_error(
            ErrorKind::usage, "crypto.key_mismatch",
            std::string("public key does not fit ") + std::string(jws_name(alg)) + ": " + why);
    };
    switch (alg) {
        case Algorithm::EdDSA:
            if (!EVP_PKEY_is_a(pkey, "ED25519")) return mismatch("not an Ed25519 key");
            return {};
        case Algorithm::ES256:
        case Algorithm::ES384: {
            if (!EVP_PKEY_is_a(pkey, "EC")) return mismatch("not an EC key");
            const char* want = alg == Algorithm::ES256 ? "prime256v1" : "secp384r1";
            if (group_name(pkey) != want) return mismatch("wrong curve");
            return {};
        }
        case Algorithm::PS256:
            if (!EVP_PKEY_is_a(pkey, "RSA") && !EVP_PKEY_is_a(pkey, "RSA-PSS")) {
                return mismatch("not an RSA key");
            }
            if (EVP_PKEY_get_bits(pkey) < kMinRsaBits)
                return mismatch("RSA modulus below 3072 bits");
            return {};
        default:
            return mismatch("unknown algorithm");
    }
}

core::Bytes bn_param(EVP_PKEY* pkey, const char* name, int pad_to) {
    BIGNUM* raw = nullptr;
    if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1) return {};
    BignumPtr bn(raw);
    int len = pad_to > 0 ? pad_to : BN_num_bytes(bn.get());
    core::Bytes out(static_cast<std::size_t>(len));
    if (BN_bn2binpad(bn.get(), out.data(), len) != len) return {};
    return out;
}

}  // namespace

PublicKey::PublicKey(PublicKey&&) noexcept = default;
PublicKey& PublicKey::operator=(PublicKey&&) noexcept = default;
PublicKey::~PublicKey() = default;

core::Result<PublicKey> PublicKey::from_spki_der(Algorithm alg, core::ByteView der) {
    if (der.empty() || der.size() > LONG_MAX) {
        return make_error(ErrorKind::usage, "crypto.bad_key", "empty public key");
    }
    const unsigned char* p = der.data();
    EvpPkeyPtr pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
    if (!pkey || p != der.data() + der.size()) {
        return make_error(ErrorKind::usage, "crypto.bad_key", "malformed SubjectPublicKeyInfo DER");
    }
    if (auto st = check_fits(alg, pkey.get()); !st) return st.error();
    return PublicKey(alg, pkey.release());
}

core::Result<PublicKey> PublicKey::from_ed25519(core::ByteView raw) {
    if (raw.size() != 32) {
        return make_error(ErrorKind::usage, "crypto.bad_key",
                          "Ed25519 public key must be 32 bytes");
    }
    EvpPkeyPtr pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()));
    if (!pkey) return make_error(ErrorKind::usage, "crypto.bad_key", last_openssl_error());
    return PublicKey(Algorithm::EdDSA, pkey.release());
}

core::Result<PublicKey> PublicKey::from_ec_point(Curve curve, core::ByteView point) {
    const std::size_t field = curve == Curve::P256 ? 32 : 48;
    if (point.size() != 1 + 2 * field || point[0] != 0x04) {
        return make_error(ErrorKind::usage, "crypto.bad_key",
                          "EC public key must be an uncompressed SEC1 point");
    }
    OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
    if (!bld) return ossl_error("OSSL_PARAM_BLD_new");
    OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve_group(curve), 0);
    OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                     point.size());
    OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
        return make_error(ErrorKind::usage, "crypto.bad_key",
                          "EC point is not on the curve: " + last_openssl_error());
    }
    EvpPkeyPtr pkey(raw);
    // fromdata does not always validate the point; do it explicitly.
    EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey.get(), nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) {
        return make_error(ErrorKind::usage, "crypto.bad_key", "EC point is not on the curve");
    }
    return PublicKey(curve == Curve::P256 ? Algorithm::ES256 : Algorithm::ES384, pkey.release());
}

core::Result<PublicKey> PublicKey::from_rsa(core::ByteView n, core::ByteView e) {
    if (n.empty() || e.empty() || n.size() > INT_MAX || e.size() > 8) {
        return make_error(ErrorKind::usage, "crypto.bad_key", "malformed RSA public key");
    }
    BignumPtr bn_n(BN_bin2bn(n.data(), static_cast<int>(n.size()), nullptr));
    BignumPtr bn_e(BN_bin2bn(e.data(), static_cast<int>(e.size()), nullptr));
    OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
    if (!bn_n || !bn_e || !bld) return ossl_error("RSA params");
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get());
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get());
    OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
        return make_error(ErrorKind::usage, "crypto.bad_key", "malformed RSA public key");
    }
    EvpPkeyPtr pkey(raw);
    if (auto st = check_fits(Algorithm::PS256, pkey.get()); !st) return st.error();
    return PublicKey(Algorithm::PS256, pkey.release());
}

core::Bytes PublicKey::spki_der() const {
    unsigned char* der = nullptr;
    const int len = i2d_PUBKEY(pkey_.get(), &der);
    const OsslBytesPtr owned(der);
    if (len <= 0) return {};
    return core::Bytes(der, der + len);
}

core::Bytes PublicKey::ed25519_raw() const {
    core::Bytes out(32);
    size_t len = out.size();
    if (EVP_PKEY_get_raw_public_key(pkey_.get(), out.data(), &len) != 1 || len != 32) return {};
    return out;
}

std::pair<core::Bytes, core::Bytes> PublicKey::ec_xy() const {
    int field = alg_ == Algorithm::ES384 ? 48 : 32;
    return {bn_param(pkey_.get(), OSSL_PKEY_PARAM_EC_PUB_X, field),
            bn_param(pkey_.get(), OSSL_PKEY_PARAM_EC_PUB_Y, field)};
}

std::pair<core::Bytes, core::Bytes> PublicKey::rsa_ne() const {
    return {bn_param(pkey_.get(), OSSL_PKEY_PARAM_RSA_N, 0),
            bn_param(pkey_.get(), OSSL_PKEY_PARAM_RSA_E, 0)};
}

core::Status PublicKey::verify(core::ByteView message, core::ByteView signature) const {
    auto bad = [] {
        return make_error(ErrorKind::integrity, "crypto.signature_invalid",
                          "signature verification failed");
    };
    core::Bytes der;
    core::ByteView sig = signature;
    const EVP_MD* md = nullptr;
    switch (alg_) {
        case Algorithm::EdDSA:
            if (signature.size() != 64) return bad();
            break;
        case Algorithm::ES256:
        case Algorithm::ES384: {
            // RFC 7518 §3.4: the signature is the fixed-width R||S octet sequence.
            std::size_t field = alg_ == Algorithm::ES256 ? 32 : 48;
            if (signature.size() != 2 * field) return bad();
            auto d = ecdsa_raw_to_der(signature, field);
            if (!d) return bad();
            der = std::move(*d);
            sig = der;
            md = alg_ == Algorithm::ES256 ? EVP_sha256() : EVP_sha384();
            break;
        }
        case Algorithm::PS256:
            md = EVP_sha256();
            break;
        default:
            return bad();
    }
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    if (!ctx || EVP_DigestVerifyInit_ex(ctx.get(), &pctx, md ? EVP_MD_get0_name(md) : nullptr,
                                        nullptr, nullptr, pkey_.get(), nullptr) != 1) {
        return ossl_error("EVP_DigestVerifyInit_ex");
    }
    if (alg_ == Algorithm::PS256) {
        // RFC 7518 §3.5: MGF1 with SHA-256 and a salt as long as the hash.
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) != 1) {
            return ossl_error("PSS parameters");
        }
    }
    int rc = EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size());
    if (rc != 1) {
        ERR_clear_error();
        return bad();
    }
    return {};
}

}  // namespace licentra::crypto
