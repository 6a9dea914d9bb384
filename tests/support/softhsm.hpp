// SoftHSM2 token fixture: a fresh token in a private temporary directory.
//
// Construction writes <dir>/softhsm2.conf (directories.tokendir = <dir>/tokens), points
// SOFTHSM2_CONF at it for this process (setenv), initializes a token with softhsm2-util and
// writes the user PIN to <dir>/user.pin (mode 0600). The PINs are random throwaway test PINs;
// softhsm2-util receives them on argv, which is acceptable only here.
//
// SoftHSM reads SOFTHSM2_CONF in C_Initialize: create the fixture before loading the module
// (hsm::Module::load) and destroy the module before the next fixture is created.
// Throws std::runtime_error if softhsm2-util or the SoftHSM module is missing or fails.
#pragma once

#include <filesystem>
#include <string>

#include "support/test_support.hpp"

namespace licentra::test {

class SoftHsmToken {
  public:
    explicit SoftHsmToken(std::string label = "licentra-test");
    ~SoftHsmToken();
    SoftHsmToken(const SoftHsmToken&) = delete;
    SoftHsmToken& operator=(const SoftHsmToken&) = delete;

    // Absolute path of libsofthsm2.so (LICENTRA_SOFTHSM_MODULE overrides the default).
    static std::string module_path();

    const std::string& token_label() const { return label_; }
    // RFC 7512 URI selecting this token, with the PIN file as a query attribute:
    //   pkcs11:token=<label>?pin-source=file:<pin_file>
    std::string uri() const;
    // Same, without pin-source.
    std::string uri_without_pin() const;
    std::filesystem::path pin_file() const { return dir() / "user.pin"; }
    std::filesystem::path so_pin_file() const { return dir() / "so.pin"; }
    // Throwaway test PINs, for tools such as pkcs11-tool that take them on argv in tests.
    const std::string& user_pin() const { return user_pin_; }
    const std::string& so_pin() const { return so_pin_; }
    std::filesystem::path conf_path() const { return dir() / "softhsm2.conf"; }
    std::filesystem::path token_dir() const { return dir() / "tokens"; }
    const std::filesystem::path& dir() const { return tmp_.path(); }

    // Initializes one more token (same PINs) in the same token directory.
    void add_token(const std::string& label) const;

  private:
    TempDir tmp_;
    std::string label_;
    std::string so_pin_;
    std::string user_pin_;
};

// Percent-encodes a value for a PKCS#11 URI path or query attribute (RFC 7512 §2.3: any
// character outside the unreserved set and a few safe ones is written as %XX).
std::string pkcs11_uri_encode(const std::string& value);

}  // namespace licentra::test
