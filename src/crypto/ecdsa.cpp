#include "crypto/ecdsa.hpp"

#include <openssl/ecdsa.h>

#include <climits>

#include "crypto/ossl.hpp"

namespace licentra::crypto {

using core::ErrorKind;
using core::make_error;

core::Result<core::Bytes> ecdsa_raw_to_der(core::ByteView raw, std::size_t field_size) {
    if (field_size == 0 || raw.size() != 2 * field_size) {
        return make_error(
            ErrorKind::usage, "crypto.bad_signature",
            "ECDSA signature must be exactly " + std::to_string(2 * field_size) + " bytes (r||s)");
    }
    const int n = static_cast<int>(field_size);
    BignumPtr r(BN_bin2bn(raw.data(), n, nullptr));
    BignumPtr s(BN_bin2bn(raw.data() + field_size, n, nullptr));
    EcdsaSigPtr sig(ECDSA_SIG_new());
    if (!r || !s || !sig || ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
        return make_error(ErrorKind::internal, "crypto.openssl", last_openssl_error());
    }
    r.release();  // owned by sig now
    s.release();
    unsigned char* der = nullptr;
    const int len = i2d_ECDSA_SIG(sig.get(), &der);
    const OsslBytesPtr owned(der);
    if (len <= 0) return make_error(ErrorKind::internal, "crypto.openssl", last_openssl_error());
    return core::Bytes(der, der + len);
}

core::Result<core::Bytes> ecdsa_der_to_raw(core::ByteView der, std::size_t field_size) {
    if (der.size() > LONG_MAX) return make_error(ErrorKind::usage, "crypto.bad_signature");
    const unsigned char* p = der.data();
    EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
    if (!sig || p != der.data() + der.size()) {
        return make_error(ErrorKind::usage, "crypto.bad_signature",
                          "malformed DER ECDSA signature");
    }
    // Reject non-canonical DER by re-encoding and comparing.
    unsigned char* re = nullptr;
    const int relen = i2d_ECDSA_SIG(sig.get(), &re);
    const OsslBytesPtr owned(re);
    const bool canonical =
        relen == static_cast<int>(der.size()) && std::equal(der.begin(), der.end(), re);
    if (!canonical) {
        return make_error(ErrorKind::usage, "crypto.bad_signature", "non-canonical DER signature");
    }
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(sig.get(), &r, &s);
    core::Bytes out(2 * field_size);
    const int n = static_cast<int>(field_size);
    if (BN_bn2binpad(r, out.data(), n) != n || BN_bn2binpad(s, out.data() + field_size, n) != n) {
        return make_error(ErrorKind::usage, "crypto.bad_signature",
                          "ECDSA integer larger than the field");
    }
    return out;
}

}  // namespace licentra::crypto
