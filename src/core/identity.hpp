// The identity a client proved at the TLS handshake, extracted from its verified certificate.
// net/ fills it in; policy/ maps it to a principal.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace licentra::core {

struct ClientIdentity {
    std::string subject_cn;             // subject commonName (UTF-8)
    std::string issuer_dn;              // issuer DN, RFC 2253 form (OpenSSL XN_FLAG_RFC2253)
    std::vector<std::string> san_uris;  // subjectAltName URIs
    std::vector<std::string> san_dns;   // subjectAltName dNSNames
    std::array<std::uint8_t, 32> spki_sha256{};  // SHA-256 of the SubjectPublicKeyInfo DER
};

}  // namespace licentra::core
