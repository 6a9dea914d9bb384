// Test-only crypto::Signer over an in-process OpenSSL key: lets token tests produce real
// tokens for every algorithm without an HSM.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <optional>

#include "crypto/ossl.hpp"
#include "crypto/signer.hpp"

namespace licentra::test {

class OpensslSigner final : public crypto::Signer {
  public:
    // Generates a fresh key: Ed25519, P-256, P-384 or RSA-3072 (rsa_bits overrides the size; an
    // RSA key below 3072 bits has no public_key(), since crypto::PublicKey refuses it).
    static std::unique_ptr<OpensslSigner> generate(crypto::Algorithm alg, int rsa_bits = 3072);

    [[nodiscard]] crypto::Algorithm algorithm() const override { return alg_; }
    [[nodiscard]] const crypto::PublicKey& public_key() const override { return *public_; }
    [[nodiscard]] core::Result<core::Bytes> sign(core::ByteView message) override;
    // ECDSA only: the DER form OpenSSL produces, which JWS forbids.
    [[nodiscard]] core::Bytes sign_der(core::ByteView message);
    [[nodiscard]] EVP_PKEY* pkey() const { return pkey_.get(); }

  private:
    OpensslSigner(crypto::Algorithm alg, crypto::EvpPkeyPtr pkey,
                  std::optional<crypto::PublicKey> pub)
        : alg_(alg), pkey_(std::move(pkey)), public_(std::move(pub)) {}
    crypto::Algorithm alg_;
    crypto::EvpPkeyPtr pkey_;
    std::optional<crypto::PublicKey> public_;
};

}  // namespace licentra::test
