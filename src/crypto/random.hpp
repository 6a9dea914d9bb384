#pragma once

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace licentra::crypto {

// n bytes from OpenSSL's CSPRNG (RAND_bytes). Fails only if the RNG cannot be seeded.
[[nodiscard]] core::Result<core::Bytes> random_bytes(std::size_t n);

}  // namespace licentra::crypto
