// The one interface through which token/ and audit/ get signatures. app/ wires in an
// HSM-backed implementation; tests may wire an in-process one.
#pragma once

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "crypto/algorithm.hpp"
#include "crypto/public_key.hpp"

namespace licentra::crypto {

class Signer {
  public:
    virtual ~Signer() = default;
    [[nodiscard]] virtual Algorithm algorithm() const = 0;
    [[nodiscard]] virtual const PublicKey& public_key() const = 0;
    // Signs message (the full signing input; the implementation hashes as the algorithm
    // requires) and returns the signature in JWS form (raw r||s for ECDSA).
    // Thread-safe.
    [[nodiscard]] virtual core::Result<core::Bytes> sign(core::ByteView message) = 0;
};

}  // namespace licentra::crypto
