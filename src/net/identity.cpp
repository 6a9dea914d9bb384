#include "net/identity.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "crypto/digest.hpp"
#include "crypto/ossl.hpp"

namespace licentra::net {
namespace {

using crypto::GeneralNamesPtr;

core::Error identity_error(std::string message) {
    return core::make_error(core::ErrorKind::usage, "net.bad_client_identity", std::move(message));
}

// An ASN1 string as UTF-8; fails on embedded NUL (a classic name-spoofing trick).
core::Result<std::string> utf8(const ASN1_STRING* s) {
    unsigned char* out = nullptr;
    const int len = ASN1_STRING_to_UTF8(&out, s);
    const crypto::OsslBytesPtr owned(out);
    if (len < 0) return identity_error("name is not convertible to UTF-8");
    std::string value(reinterpret_cast<const char*>(out), static_cast<std::size_t>(len));
    if (value.find('\0') != std::string::npos) return identity_error("name contains NUL");
    return value;
}

core::Result<std::string> ia5(const ASN1_IA5STRING* s) {
    std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                      static_cast<std::size_t>(ASN1_STRING_length(s)));
    if (value.find('\0') != std::string::npos) return identity_error("SAN contains NUL");
    return value;
}

}  // namespace

std::string name_rfc2253(const X509_NAME* name) {
    crypto::BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

core::Result<core::ClientIdentity> identity_from_certificate(X509* cert) {
    if (cert == nullptr) return identity_error("no client certificate");
    core::ClientIdentity id;

    const X509_NAME* subject = X509_get_subject_name(cert);
    int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (index >= 0) {
        if (X509_NAME_get_index_by_NID(subject, NID_commonName, index) >= 0) {
            return identity_error("subject has more than one commonName");
        }
        auto cn = utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
        if (!cn) return std::move(cn).error();
        id.subject_cn = std::move(cn).value();
    }

    id.issuer_dn = name_rfc2253(X509_get_issuer_name(cert));

    GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    if (sans) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
            const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
            if (gn->type == GEN_URI) {
                auto v = ia5(gn->d.uniformResourceIdentifier);
                if (!v) return std::move(v).error();
                id.san_uris.push_back(std::move(v).value());
            } else if (gn->type == GEN_DNS) {
                auto v = ia5(gn->d.dNSName);
                if (!v) return std::move(v).error();
                id.san_dns.push_back(std::move(v).value());
            }
        }
    }

    // RFC 7469 §2.4-style pin: SHA-256 over the DER SubjectPublicKeyInfo.
    unsigned char* der = nullptr;
    const int der_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    const crypto::OsslBytesPtr owned(der);
    if (der_len <= 0) return identity_error("cannot encode the subject public key");
    id.spki_sha256 = crypto::sha256(core::ByteView(der, static_cast<std::size_t>(der_len)));
    return id;
}

core::Result<core::ClientIdentity> identity_from_pem(std::string_view pem) {
    crypto::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    crypto::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) return identity_error("not a PEM certificate");
    return identity_from_certificate(cert.get());
}

}  // namespace licentra::net
