// A verified-shape public key: what the HSM exports and what verifiers use.
#pragma once

#include <memory>
#include <string>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "crypto/algorithm.hpp"
#include "crypto/ossl_fwd.hpp"

namespace licentra::crypto {

enum class Curve { P256, P384 };

class PublicKey {
  public:
    // Parse SubjectPublicKeyInfo DER and check it fits alg (curve, key type, RSA >= 3072).
    static core::Result<PublicKey> from_spki_der(Algorithm alg, core::ByteView der);
    // Ed25519 raw 32-byte public key (RFC 8032 encoding).
    static core::Result<PublicKey> from_ed25519(core::ByteView raw);
    // SEC1 uncompressed point 0x04||X||Y on the given curve.
    static core::Result<PublicKey> from_ec_point(Curve curve, core::ByteView point);
    // RSA modulus and public exponent, big-endian unsigned.
    static core::Result<PublicKey> from_rsa(core::ByteView n, core::ByteView e);

    PublicKey(PublicKey&&) noexcept;
    PublicKey& operator=(PublicKey&&) noexcept;
    ~PublicKey();

    [[nodiscard]] Algorithm algorithm() const noexcept { return alg_; }
    [[nodiscard]] EVP_PKEY* get() const noexcept { return pkey_.get(); }
    [[nodiscard]] core::Bytes spki_der() const;

    // Components for JWK encoding (RFC 7517/7518/8037).
    [[nodiscard]] core::Bytes ed25519_raw() const;                     // EdDSA: "x"
    [[nodiscard]] std::pair<core::Bytes, core::Bytes> ec_xy() const;   // ES*: "x","y", fixed width
    [[nodiscard]] std::pair<core::Bytes, core::Bytes> rsa_ne() const;  // PS256: "n","e"

    // Verify a raw JWS-form signature over message (the whole signing input, not a hash).
    // ECDSA: exactly 2*field bytes r||s; PSS: salt length = 32; EdDSA: pure Ed25519.
    [[nodiscard]] core::Status verify(core::ByteView message, core::ByteView signature) const;

  private:
    PublicKey(Algorithm alg, EVP_PKEY* pkey) noexcept : alg_(alg), pkey_(pkey) {}
    Algorithm alg_;
    OpaquePkeyPtr pkey_;
};

}  // namespace licentra::crypto
