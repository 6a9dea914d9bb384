// `licentra hsm keys|generate`: operator commands against a PKCS#11 token, for provisioning
// and inspection. The PIN comes from the URI's pin-source file, never from the command line.
#include <cstdlib>
#include <iostream>

#include "app/cli.hpp"
#include "crypto/algorithm.hpp"
#include "hsm/hsm.hpp"

namespace licentra::app {

namespace {

constexpr const char* kHsmUsage = R"(usage: licentra hsm keys --uri URI [--module PATH] [--prefix P]
       licentra hsm generate --uri URI --name NAME --version N --alg EdDSA|ES256|ES384|PS256
                             [--module PATH]

URI is an RFC 7512 token URI with the PIN file as pin-source, e.g.
  pkcs11:token=licentra?pin-source=file:/var/lib/licentra/hsm/user.pin
PATH defaults to $LICENTRA_PKCS11_MODULE or SoftHSM2's module. For SoftHSM set SOFTHSM2_CONF.
'keys' lists key versions (label, algorithm, CKA_ID, whether the private key is present).
'generate' creates a sign-only key pair licentra/NAME/vN inside the token. See docs/hsm.md.
)";

}  // namespace

int cli_hsm(const std::vector<std::string>& args) {
    std::vector<std::string> rest(args.begin() + 1, args.end());
    Args parsed(rest, {"--uri", "--module", "--prefix", "--name", "--version", "--alg"},
                {"--help"});
    if (!parsed.ok()) {
        std::cerr << "licentra hsm: " << parsed.error() << "\n" << kHsmUsage;
        return kExitUsage;
    }
    if (parsed.has("--help")) {
        std::cout << kHsmUsage;
        return kExitOk;
    }
    const auto& pos = parsed.positional();
    if (pos.size() != 1 || (pos[0] != "keys" && pos[0] != "generate") || !parsed.get("--uri")) {
        std::cerr << kHsmUsage;
        return kExitUsage;
    }
    std::string module_path = "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so";
    if (const char* env = std::getenv("LICENTRA_PKCS11_MODULE"); env != nullptr && *env != '\0') {
        module_path = env;
    }
    if (auto m = parsed.get("--module")) module_path = *m;

    std::optional<crypto::Algorithm> alg;
    unsigned long version = 0;
    if (pos[0] == "generate") {
        const auto name = parsed.get("--name");
        const auto ver = parsed.get("--version");
        const auto a = parsed.get("--alg");
        if (!name || !ver || !a) {
            std::cerr << kHsmUsage;
            return kExitUsage;
        }
        alg = crypto::algorithm_from_jws_name(*a);
        if (!alg) {
            std::cerr << "licentra hsm: unknown algorithm '" << *a << "'\n";
            return kExitUsage;
        }
        try {
            version = std::stoul(*ver);
        } catch (...) {
            version = 0;
        }
        if (version == 0 || version > 0x7fffffffUL) {
            std::cerr << "licentra hsm: --version must be a positive integer\n";
            return kExitUsage;
        }
    }

    auto module = hsm::Module::load(module_path);
    if (!module) {
        std::cerr << "licentra hsm: " << module.error().message << "\n";
        return kExitUnavailable;
    }
    hsm::TokenOptions options;
    options.uri = *parsed.get("--uri");
    options.pool_size = 1;
    auto token = hsm::Token::open(*module, options);
    if (!token) {
        std::cerr << "licentra hsm: " << token.error().message << "\n";
        return token.error().kind == core::ErrorKind::usage ? kExitUsage : kExitUnavailable;
    }

    if (pos[0] == "generate") {
        auto key =
            (*token)->generate_key(*parsed.get("--name"), static_cast<unsigned>(version), *alg);
        if (!key) {
            std::cerr << "licentra hsm: " << key.error().message << "\n";
            return kExitFailure;
        }
        std::cout << key->label << " " << crypto::jws_name(key->algorithm)
                  << " id=" << core::hex_encode(key->id) << "\n";
        return kExitOk;
    }

    auto keys = (*token)->list_keys(parsed.get("--prefix").value_or("licentra/"));
    if (!keys) {
        std::cerr << "licentra hsm: " << keys.error().message << "\n";
        return kExitUnavailable;
    }
    std::cout << "token " << (*token)->label() << " (serial " << (*token)->serial()
              << "): " << keys->size() << " key version(s)\n";
    for (const auto& k : *keys) {
        std::cout << "  " << k.label << "  "
                  << (k.algorithm ? std::string(crypto::jws_name(*k.algorithm)) : "unknown")
                  << "  id=" << k.id_hex << "  private=" << (k.has_private ? "yes" : "destroyed")
                  << "\n";
    }
    return kExitOk;
}

}  // namespace licentra::app
