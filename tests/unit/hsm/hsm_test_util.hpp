// Helpers for the hsm tests: an opened token on a fresh SoftHSM fixture, and verification of
// signatures by the openssl command line.
#pragma once

#include <memory>
#include <string>

#include "core/bytes.hpp"
#include "crypto/public_key.hpp"
#include "hsm/hsm.hpp"
#include "support/softhsm.hpp"

namespace licentra::hsm::testing {

// A fresh token, the module loaded and the token opened (pool_size sessions).
struct OpenToken {
    explicit OpenToken(std::size_t pool_size = 4);
    ~OpenToken();
    test::SoftHsmToken fixture;
    std::shared_ptr<Module> module;
    std::shared_ptr<Token> token;
};

// Verifies signature over message with `openssl pkeyutl -verify` (SPKI written as PEM; ECDSA
// converted to DER first). Returns openssl's output; ok set to whether it verified.
bool openssl_verifies(const crypto::PublicKey& key, core::ByteView message,
                      core::ByteView signature, std::string* output);

}  // namespace licentra::hsm::testing
