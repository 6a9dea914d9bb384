// The one place where ECDSA signatures change shape: JWS and PKCS#11 CKM_ECDSA use the raw
// fixed-width r||s form (RFC 7518 §3.4); OpenSSL and X.509 use DER Ecdsa-Sig-Value.
#pragma once

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace licentra::crypto {

// raw: exactly 2 * field_size bytes. Returns DER SEQUENCE { INTEGER r, INTEGER s }.
[[nodiscard]] core::Result<core::Bytes> ecdsa_raw_to_der(core::ByteView raw,
                                                         std::size_t field_size);
// der: a strict DER Ecdsa-Sig-Value. Returns r||s, each left-padded to field_size bytes.
[[nodiscard]] core::Result<core::Bytes> ecdsa_der_to_raw(core::ByteView der,
                                                         std::size_t field_size);

}  // namespace licentra::crypto
