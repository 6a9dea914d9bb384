#include "hsm_test_util.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "crypto/ecdsa.hpp"
#include "support/test_support.hpp"

namespace licentra::hsm::testing {

OpenToken::OpenToken(std::size_t pool_size) {
    auto m = Module::load(test::SoftHsmToken::module_path());
    if (!m) throw std::runtime_error("module load: " + m.error().to_string());
    module = *m;
    TokenOptions o;
    o.uri = fixture.uri();
    o.pool_size = pool_size;
    auto t = Token::open(module, o);
    if (!t) throw std::runtime_error("token open: " + t.error().to_string());
    token = std::move(t).value();
}

OpenToken::~OpenToken() {
    token.reset();
    module.reset();
}

namespace {

std::string pem(const core::Bytes& der) {
    const std::string b64 = core::base64_encode(der);
    std::string out = "-----BEGIN PUBLIC KEY-----\n";
    for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
    return out + "-----END PUBLIC KEY-----\n";
}

}  // namespace

bool openssl_verifies(const crypto::PublicKey& key, core::ByteView message,
                      core::ByteView signature, std::string* output) {
    test::TempDir dir;
    const auto pub = dir.path() / "pub.pem";
    const auto msg = dir.path() / "msg.bin";
    const auto sig = dir.path() / "sig.bin";
    test::write_file(pub, pem(key.spki_der()));
    test::write_file(msg, std::string(core::as_chars(message)));
    core::Bytes sig_bytes(signature.begin(), signature.end());
    std::vector<std::string> argv = {"openssl",    "pkeyutl",    "-verify",   "-pubin",
                                     "-inkey",     pub.string(), "-rawin",    "-in",
                                     msg.string(), "-sigfile",   sig.string()};
    switch (key.algorithm()) {
        case crypto::Algorithm::EdDSA:
            break;
        case crypto::Algorithm::ES256:
        case crypto::Algorithm::ES384: {
            const bool p256 = key.algorithm() == crypto::Algorithm::ES256;
            auto der = crypto::ecdsa_raw_to_der(signature, p256 ? 32 : 48);
            if (!der) {
                *output = "raw->DER failed: " + der.error().message;
                return false;
            }
            sig_bytes = *der;
            argv.insert(argv.end(), {"-digest", p256 ? "sha256" : "sha384"});
            break;
        }
        case crypto::Algorithm::PS256:
            argv.insert(argv.end(),
                        {"-digest", "sha256", "-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt",
                         "rsa_pss_saltlen:32", "-pkeyopt", "rsa_mgf1_md:sha256"});
            break;
    }
    test::write_file(sig, std::string(core::as_chars(sig_bytes)));
    const int rc = test::run_command(argv, output);
    return rc == 0 && output->find("Signature Verified Successfully") != std::string::npos;
}

}  // namespace licentra::hsm::testing
