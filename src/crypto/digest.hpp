// SHA-256 and SHA-384 (OpenSSL EVP). Thread-safe; the only shared state is each algorithm,
// fetched once and immutable.
#pragma once

#include <array>
#include <cstdint>

#include "core/bytes.hpp"
#include "crypto/ossl_fwd.hpp"

namespace licentra::crypto {

using Sha256Digest = std::array<std::uint8_t, 32>;
using Sha384Digest = std::array<std::uint8_t, 48>;

[[nodiscard]] Sha256Digest sha256(core::ByteView data);
[[nodiscard]] Sha384Digest sha384(core::ByteView data);

// Incremental SHA-256 for multi-part inputs (Merkle node hashes, prefixed leaves).
class Sha256 {
  public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    Sha256& update(core::ByteView data);
    Sha256& update(std::uint8_t byte);
    [[nodiscard]] Sha256Digest finish();

  private:
    OpaqueMdCtxPtr ctx_;
};

}  // namespace licentra::crypto
