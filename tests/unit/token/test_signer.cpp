#include "unit/token/test_signer.hpp"

#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <stdexcept>

#include "crypto/ecdsa.hpp"

namespace licentra::test {

std::unique_ptr<OpensslSigner> OpensslSigner::generate(crypto::Algorithm alg, int rsa_bits) {
    EVP_PKEY* raw = nullptr;
    switch (alg) {
        case crypto::Algorithm::EdDSA:
            raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
            break;
        case crypto::Algorithm::ES256:
            raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
            break;
        case crypto::Algorithm::ES384:
            raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
            break;
        case crypto::Algorithm::PS256:
            raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(rsa_bits));
            break;
        default:
            break;
    }
    if (raw == nullptr) throw std::runtime_error("key generation failed");
    crypto::EvpPkeyPtr pkey(raw);
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(pkey.get(), &der);
    if (len <= 0) throw std::runtime_error("i2d_PUBKEY failed");
    core::Bytes spki(der, der + len);
    OPENSSL_free(der);
    auto pub = crypto::PublicKey::from_spki_der(alg, spki);
    if (!pub) {
        // Undersized RSA keys exist only to prove they are refused: no PublicKey for them.
        if (alg == crypto::Algorithm::PS256 && rsa_bits < 3072) {
            return std::unique_ptr<OpensslSigner>(
                new OpensslSigner(alg, std::move(pkey), std::nullopt));
        }
        throw std::runtime_error("public key rejected: " + pub.error().message);
    }
    return std::unique_ptr<OpensslSigner>(new OpensslSigner(alg, std::move(pkey), std::move(*pub)));
}

core::Bytes OpensslSigner::sign_der(core::ByteView message) {
    crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    const char* md = nullptr;
    if (alg_ == crypto::Algorithm::ES256 || alg_ == crypto::Algorithm::PS256) md = "SHA256";
    if (alg_ == crypto::Algorithm::ES384) md = "SHA384";
    if (EVP_DigestSignInit_ex(ctx.get(), &pctx, md, nullptr, nullptr, pkey_.get(), nullptr) != 1) {
        throw std::runtime_error("EVP_DigestSignInit_ex failed");
    }
    if (alg_ == crypto::Algorithm::PS256) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256());
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32);
    }
    size_t len = 0;
    if (EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) != 1) {
        throw std::runtime_error("EVP_DigestSign size failed");
    }
    core::Bytes sig(len);
    if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1) {
        throw std::runtime_error("EVP_DigestSign failed");
    }
    sig.resize(len);
    return sig;
}

core::Result<core::Bytes> OpensslSigner::sign(core::ByteView message) {
    core::Bytes sig = sign_der(message);
    if (alg_ == crypto::Algorithm::ES256 || alg_ == crypto::Algorithm::ES384) {
        return crypto::ecdsa_der_to_raw(sig, alg_ == crypto::Algorithm::ES256 ? 32 : 48);
    }
    return sig;
}

}  // namespace licentra::test
