// Test PKI built with the OpenSSL API at test time: a CA, a server certificate for
// 127.0.0.1/localhost, client certificates with chosen CN and SANs, expired certificates, and
// (with a second TestPki) certificates from another CA. PEM files go into a directory.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace licentra::test {

struct CertFiles {
    std::filesystem::path cert;  // PEM certificate
    std::filesystem::path key;   // PEM private key (mode 0600)
};

struct CertSpec {
    std::string cn;
    std::vector<std::string> san_uris;
    std::vector<std::string> san_dns;
    std::vector<std::string> san_ips;
    bool server = false;   // extendedKeyUsage serverAuth (else clientAuth)
    bool expired = false;  // validity ended yesterday
};

class TestPki {
  public:
    // Creates a P-256 CA "CN=<ca_cn>" and writes <dir>/<prefix>ca.pem. Aborts the test
    // (gtest fatal failure via exceptions is not used: throws std::runtime_error) on OpenSSL
    // errors.
    explicit TestPki(std::filesystem::path dir, std::string ca_cn = "Licentra Test CA",
                     std::string prefix = "");
    ~TestPki();
    TestPki(const TestPki&) = delete;
    TestPki& operator=(const TestPki&) = delete;

    [[nodiscard]] const std::filesystem::path& ca_file() const { return ca_file_; }
    [[nodiscard]] std::string ca_subject() const;  // RFC 2253, e.g. "CN=Licentra Test CA"

    // Issues a certificate signed by this CA into <dir>/<prefix><name>.{crt,key}.pem.
    CertFiles issue(const std::string& name, const CertSpec& spec);
    // Server certificate with SAN IP 127.0.0.1 and DNS localhost.
    CertFiles server(const std::string& name = "server");
    // Client certificate with the given CN and SAN URIs.
    CertFiles client(const std::string& name, const std::string& cn,
                     std::vector<std::string> san_uris = {}, bool expired = false);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::filesystem::path dir_;
    std::string prefix_;
    std::filesystem::path ca_file_;
};

}  // namespace licentra::test
