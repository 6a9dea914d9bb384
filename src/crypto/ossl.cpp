#include "crypto/ossl.hpp"

#include <openssl/err.h>

namespace licentra::crypto {

void PkeyFree::operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
void MdCtxFree::operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }

std::string last_openssl_error() {
    unsigned long code = ERR_peek_last_error();
    std::string out;
    if (code != 0) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof buf);
        out = buf;
    } else {
        out = "unknown OpenSSL error";
    }
    ERR_clear_error();
    return out;
}

}  // namespace licentra::crypto
