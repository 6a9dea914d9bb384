// core::ClientIdentity from a verified client certificate.
#pragma once

#include <openssl/x509.h>

#include <string>
#include <string_view>

#include "core/identity.hpp"
#include "core/result.hpp"

namespace licentra::net {

// Extracts subject CN (UTF-8), issuer DN in RFC 2253 form (X509_NAME_print_ex with
// XN_FLAG_RFC2253), subjectAltName URIs and dNSNames, and SHA-256 of the DER
// SubjectPublicKeyInfo. Precondition: cert was verified by the TLS stack. Errors: usage
// (net.bad_client_identity) if the subject has more than one CN or a name contains NUL.
[[nodiscard]] core::Result<core::ClientIdentity> identity_from_certificate(X509* cert);

// Same, from a PEM certificate (tests, tools).
[[nodiscard]] core::Result<core::ClientIdentity> identity_from_pem(std::string_view pem);

// X509_NAME in RFC 2253 form.
[[nodiscard]] std::string name_rfc2253(const X509_NAME* name);

}  // namespace licentra::net
