#include "support/softhsm.hpp"

#include <unistd.h>

#include <cstdlib>
#include <random>
#include <stdexcept>

// SoftHSM 2.6.1 leaks an ASN1_OCTET_STRING per Ed25519 operation inside libsofthsm2 (not in
// Licentra). OpenSSL is built without frame pointers, so LeakSanitizer's fast unwinder stops
// inside libcrypto and never sees the SoftHSM frame; slow unwinding makes these tests ten
// times slower. Every test binary that creates a SoftHSM token links this object, and so
// suppresses leaks whose visible stack ends in libcrypto; OpenSSL leaks in Licentra's own code
// are caught by the crypto unit tests, which do not load SoftHSM and carry no suppression.
extern "C" const char* __lsan_default_suppressions();
extern "C" const char* __lsan_default_suppressions() {
    return "leak:libsofthsm2.so\nleak:libcrypto.so\n";
}

namespace licentra::test {

namespace {

constexpr const char* kDefaultModule = "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so";

std::string random_pin() {
    static const char kAlphabet[] = "abcdefghijkmnpqrstuvwxyz23456789";
    std::random_device rd;
    std::string pin;
    for (int i = 0; i < 16; ++i) pin.push_back(kAlphabet[rd() % (sizeof kAlphabet - 1)]);
    return pin;
}

}  // namespace

std::string SoftHsmToken::module_path() {
    const char* env = std::getenv("LICENTRA_SOFTHSM_MODULE");
    return env != nullptr && *env != '\0' ? std::string(env) : std::string(kDefaultModule);
}

SoftHsmToken::SoftHsmToken(std::string label)
    : label_(std::move(label)), so_pin_(random_pin()), user_pin_(random_pin()) {
    if (find_program("softhsm2-util").empty()) {
        throw std::runtime_error("softhsm2-util is not installed; run scripts/setup");
    }
    if (::access(module_path().c_str(), R_OK) != 0) {
        throw std::runtime_error("SoftHSM module " + module_path() +
                                 " is missing; run scripts/setup");
    }
    std::filesystem::create_directory(token_dir());
    write_file(conf_path(),
               "directories.tokendir = " + token_dir().string() +
                   "\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
               0600);
    if (::setenv("SOFTHSM2_CONF", conf_path().c_str(), 1) != 0) {
        throw std::runtime_error("setenv SOFTHSM2_CONF failed");
    }
    write_file(pin_file(), user_pin_ + "\n", 0600);
    write_file(so_pin_file(), so_pin_ + "\n", 0600);
    add_token(label_);
}

SoftHsmToken::~SoftHsmToken() = default;

void SoftHsmToken::add_token(const std::string& label) const {
    std::string out;
    const int rc = run_command({"softhsm2-util", "--init-token", "--free", "--label", label,
                                "--so-pin", so_pin_, "--pin", user_pin_},
                               &out);
    if (rc != 0) {
        throw std::runtime_error("softhsm2-util --init-token failed (" + std::to_string(rc) +
                                 "): " + out);
    }
}

std::string pkcs11_uri_encode(const std::string& value) {
    static const char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : value) {
        const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~' ||
                           c == '/';
        if (plain) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0x0f]);
        }
    }
    return out;
}

std::string SoftHsmToken::uri_without_pin() const {
    return "pkcs11:token=" + pkcs11_uri_encode(label_);
}

std::string SoftHsmToken::uri() const {
    return uri_without_pin() + "?pin-source=file:" + pkcs11_uri_encode(pin_file().string());
}

}  // namespace licentra::test
