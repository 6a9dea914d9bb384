#include "crypto/random.hpp"

#include <openssl/rand.h>

#include <climits>

namespace licentra::crypto {

core::Result<core::Bytes> random_bytes(std::size_t n) {
    core::Bytes out(n);
    if (n > INT_MAX || RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
        return core::make_error(core::ErrorKind::internal, "crypto.rng", "RAND_bytes failed");
    }
    return out;
}

}  // namespace licentra::crypto
