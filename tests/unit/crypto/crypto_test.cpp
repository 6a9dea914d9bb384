#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "core/bytes.hpp"
#include "crypto/digest.hpp"
#include "crypto/ecdsa.hpp"
#include "crypto/ossl.hpp"
#include "crypto/public_key.hpp"

namespace licentra::crypto {
namespace {

using core::as_bytes;
using core::Bytes;

TEST(Digest, Sha256OfAbcMatchesFips180Vector) {
    auto d = sha256(as_bytes("abc"));
    EXPECT_EQ(core::hex_encode(d),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    Sha256 h;
    h.update(as_bytes("a")).update(as_bytes("bc"));
    EXPECT_EQ(h.finish(), d);
}

TEST(Digest, Sha384OfAbcMatchesFips180Vector) {
    EXPECT_EQ(core::hex_encode(sha384(as_bytes("abc"))),
              "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
              "8086072ba1e7cc2358baeca134c825a7");
}

// Signs with an in-process OpenSSL key, returns (spki, raw signature).
std::pair<Bytes, Bytes> sign_with_openssl(Algorithm alg, const std::string& msg) {
    EvpPkeyPtr key;
    switch (alg) {
        case Algorithm::EdDSA:
            key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
            break;
        case Algorithm::ES256:
            key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
            break;
        case Algorithm::ES384:
            key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
            break;
        case Algorithm::PS256:
            key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{3072}));
            break;
    }
    EXPECT_TRUE(key);
    const char* md = alg == Algorithm::EdDSA   ? nullptr
                     : alg == Algorithm::ES384 ? "SHA384"
                                               : "SHA256";
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    EXPECT_EQ(EVP_DigestSignInit_ex(ctx.get(), &pctx, md, nullptr, nullptr, key.get(), nullptr), 1);
    if (alg == Algorithm::PS256) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
    }
    size_t len = 0;
    auto m = as_bytes(msg);
    EVP_DigestSign(ctx.get(), nullptr, &len, m.data(), m.size());
    Bytes sig(len);
    EXPECT_EQ(EVP_DigestSign(ctx.get(), sig.data(), &len, m.data(), m.size()), 1);
    sig.resize(len);
    if (alg == Algorithm::ES256 || alg == Algorithm::ES384) {
        sig = *ecdsa_der_to_raw(sig, alg == Algorithm::ES256 ? 32 : 48);
    }
    unsigned char* der = nullptr;
    int dlen = i2d_PUBKEY(key.get(), &der);
    Bytes spki(der, der + dlen);
    OPENSSL_free(der);
    return {spki, sig};
}

class VerifyEachAlgorithm : public ::testing::TestWithParam<Algorithm> {};

TEST_P(VerifyEachAlgorithm, AcceptsGoodSignatureAndRejectsTampering) {
    auto alg = GetParam();
    auto [spki, sig] = sign_with_openssl(alg, "signing input");
    auto key = PublicKey::from_spki_der(alg, spki);
    ASSERT_TRUE(key.ok()) << key.error().to_string();
    EXPECT_TRUE(key->verify(as_bytes("signing input"), sig).ok());
    EXPECT_FALSE(key->verify(as_bytes("signing inpuT"), sig).ok());
    sig[sig.size() / 2] ^= 1;
    EXPECT_FALSE(key->verify(as_bytes("signing input"), sig).ok());
    EXPECT_EQ(key->spki_der(), spki);
}

INSTANTIATE_TEST_SUITE_P(All, VerifyEachAlgorithm,
                         ::testing::Values(Algorithm::EdDSA, Algorithm::ES256, Algorithm::ES384,
                                           Algorithm::PS256));

TEST(PublicKey, RebuildsFromJwkComponents) {
    for (auto alg : {Algorithm::EdDSA, Algorithm::ES256, Algorithm::ES384, Algorithm::PS256}) {
        auto [spki, sig] = sign_with_openssl(alg, "m");
        auto key = *PublicKey::from_spki_der(alg, spki);
        core::Result<PublicKey> rebuilt = core::make_error(core::ErrorKind::internal, "x");
        if (alg == Algorithm::EdDSA) {
            rebuilt = PublicKey::from_ed25519(key.ed25519_raw());
        } else if (alg == Algorithm::PS256) {
            auto [n, e] = key.rsa_ne();
            rebuilt = PublicKey::from_rsa(n, e);
        } else {
            auto [x, y] = key.ec_xy();
            Bytes point{0x04};
            point.insert(point.end(), x.begin(), x.end());
            point.insert(point.end(), y.begin(), y.end());
            rebuilt = PublicKey::from_ec_point(alg == Algorithm::ES256 ? Curve::P256 : Curve::P384,
                                               point);
        }
        ASSERT_TRUE(rebuilt.ok()) << rebuilt.error().to_string();
        EXPECT_EQ(rebuilt->spki_der(), spki);
        EXPECT_TRUE(rebuilt->verify(as_bytes("m"), sig).ok());
    }
}

TEST(PublicKey, RejectsKeyOfWrongTypeOrSize) {
    auto [spki, sig] = sign_with_openssl(Algorithm::ES256, "m");
    EXPECT_EQ(PublicKey::from_spki_der(Algorithm::ES384, spki).error().code, "crypto.key_mismatch");
    EXPECT_EQ(PublicKey::from_spki_der(Algorithm::EdDSA, spki).error().code, "crypto.key_mismatch");
    EvpPkeyPtr small(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(small.get(), &der);
    Bytes rsa2048(der, der + len);
    OPENSSL_free(der);
    EXPECT_EQ(PublicKey::from_spki_der(Algorithm::PS256, rsa2048).error().code,
              "crypto.key_mismatch");
    EXPECT_FALSE(PublicKey::from_spki_der(Algorithm::ES256, Bytes{0x30, 0x00}).ok());
    Bytes off_curve(65, 0x01);
    off_curve[0] = 0x04;
    EXPECT_FALSE(PublicKey::from_ec_point(Curve::P256, off_curve).ok());
}

TEST(Ecdsa, ConvertsBetweenRawAndDerAndRejectsMalformed) {
    Bytes raw(64, 0);
    raw[31] = 1;
    raw[63] = 2;
    auto der = ecdsa_raw_to_der(raw, 32);
    ASSERT_TRUE(der.ok());
    EXPECT_EQ(*der, (Bytes{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}));
    EXPECT_EQ(*ecdsa_der_to_raw(*der, 32), raw);
    EXPECT_FALSE(ecdsa_raw_to_der(Bytes(63, 1), 32).ok());
    // Non-minimal integer encoding is not DER.
    EXPECT_FALSE(
        ecdsa_der_to_raw(Bytes{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x02}, 32).ok());
    // Trailing garbage.
    Bytes trailing = *der;
    trailing.push_back(0);
    EXPECT_FALSE(ecdsa_der_to_raw(trailing, 32).ok());
    // Integer wider than the field.
    Bytes wide(96, 0x7f);
    auto wide_der = ecdsa_raw_to_der(wide, 48);
    EXPECT_FALSE(ecdsa_der_to_raw(*wide_der, 32).ok());
}

}  // namespace
}  // namespace licentra::crypto
