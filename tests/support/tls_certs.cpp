#include "support/tls_certs.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <stdexcept>

#include "support/test_support.hpp"

namespace licentra::test {
namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
    void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
    void operator()(BIO* p) const { BIO_free_all(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Bio = std::unique_ptr<BIO, BioFree>;

void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("test PKI: ") + what);
}

Pkey new_key() {
    Pkey key(EVP_EC_gen("P-256"));
    check(key != nullptr, "EC key generation");
    return key;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    check(ext != nullptr, "extension");
    check(X509_add_ext(cert, ext, -1) == 1, "add extension");
    X509_EXTENSION_free(ext);
}

Cert make_cert(const std::string& cn, EVP_PKEY* subject_key, X509* issuer, EVP_PKEY* issuer_key,
               long not_before_s, long not_after_s) {
    Cert cert(X509_new());
    check(cert != nullptr, "X509_new");
    X509_set_version(cert.get(), 2);
    unsigned char serial[16];
    check(RAND_bytes(serial, sizeof serial) == 1, "serial");
    serial[0] &= 0x7F;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), not_before_s);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_after_s);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(cert.get(), subject_key);
    return cert;
}

void write_pem_cert(const std::filesystem::path& path, X509* cert) {
    Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), cert);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    write_file(path, std::string(data, static_cast<std::size_t>(len)), 0644);
}

void write_pem_key(const std::filesystem::path& path, EVP_PKEY* key) {
    Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    write_file(path, std::string(data, static_cast<std::size_t>(len)), 0600);
}

std::string join(const std::vector<std::string>& parts, const std::string& prefix) {
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) out += ",";
        out += prefix + p;
    }
    return out;
}

}  // namespace

struct TestPki::Impl {
    Pkey ca_key;
    Cert ca_cert;
};

TestPki::TestPki(std::filesystem::path dir, std::string ca_cn, std::string prefix)
    : impl_(std::make_unique<Impl>()), dir_(std::move(dir)), prefix_(std::move(prefix)) {
    impl_->ca_key = new_key();
    impl_->ca_cert = make_cert(ca_cn, impl_->ca_key.get(), nullptr, nullptr, -3600, 86400L * 30);
    X509* ca = impl_->ca_cert.get();
    add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(ca, ca, NID_subject_key_identifier, "hash");
    check(X509_sign(ca, impl_->ca_key.get(), EVP_sha256()) > 0, "sign CA");
    ca_file_ = dir_ / (prefix_ + "ca.pem");
    write_pem_cert(ca_file_, ca);
}

TestPki::~TestPki() = default;

std::string TestPki::ca_subject() const {
    Bio bio(BIO_new(BIO_s_mem()));
    X509_NAME_print_ex(bio.get(), X509_get_subject_name(impl_->ca_cert.get()), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

CertFiles TestPki::issue(const std::string& name, const CertSpec& spec) {
    Pkey key = new_key();
    const long not_before = spec.expired ? -86400L * 2 : -3600;
    const long not_after = spec.expired ? -86400L : 86400L * 7;
    Cert cert = make_cert(spec.cn, key.get(), impl_->ca_cert.get(), impl_->ca_key.get(), not_before,
                          not_after);
    X509* c = cert.get();
    X509* ca = impl_->ca_cert.get();
    add_ext(c, ca, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(c, ca, NID_key_usage, "critical,digitalSignature");
    add_ext(c, ca, NID_ext_key_usage, spec.server ? "serverAuth" : "clientAuth");
    add_ext(c, ca, NID_authority_key_identifier, "keyid:always");
    std::string san = join(spec.san_uris, "URI:");
    for (const auto& part : {join(spec.san_dns, "DNS:"), join(spec.san_ips, "IP:")}) {
        if (part.empty()) continue;
        if (!san.empty()) san += ",";
        san += part;
    }
    if (!san.empty()) add_ext(c, ca, NID_subject_alt_name, san);
    check(X509_sign(c, impl_->ca_key.get(), EVP_sha256()) > 0, "sign certificate");
    CertFiles files{dir_ / (prefix_ + name + ".crt.pem"), dir_ / (prefix_ + name + ".key.pem")};
    write_pem_cert(files.cert, c);
    write_pem_key(files.key, key.get());
    return files;
}

CertFiles TestPki::server(const std::string& name) {
    CertSpec spec;
    spec.cn = "localhost";
    spec.san_dns = {"localhost"};
    spec.san_ips = {"127.0.0.1"};
    spec.server = true;
    return issue(name, spec);
}

CertFiles TestPki::client(const std::string& name, const std::string& cn,
                          std::vector<std::string> san_uris, bool expired) {
    CertSpec spec;
    spec.cn = cn;
    spec.san_uris = std::move(san_uris);
    spec.expired = expired;
    return issue(name, spec);
}

}  // namespace licentra::test
