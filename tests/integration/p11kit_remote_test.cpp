// licentra-signd against a remote PKCS#11 peer: `p11-kit server` serves the SoftHSM token on a
// unix socket, and the daemon's hsm.module is p11-kit-client.so with P11_KIT_SERVER_ADDRESS
// pointing there. p11-kit's remote layer does not forward CKM_EDDSA, so the policy's keys are
// all ES256 and the audit checkpoint key is ES256 (audit.key_algorithm). The daemon generates
// its keys through the remote layer, signs a token that the offline CLI verifies against the
// published JWKS, and `licentra audit verify` accepts the log it wrote.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>

#include "core/bytes.hpp"
#include "crypto/digest.hpp"
#include "support/daemon.hpp"

namespace licentra::test {
namespace {

using namespace std::chrono_literals;

std::string p11kit_client_path() {
    if (const char* p = std::getenv("LICENTRA_P11KIT_CLIENT"); p != nullptr && *p != '\0') {
        return p;
    }
    return "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so";
}

// `p11-kit server -f -s -n <socket> --provider <softhsm> pkcs11:token=<label>` as a child
// process; address() is what it printed as P11_KIT_SERVER_ADDRESS.
class P11KitServer {
  public:
    P11KitServer(const std::string& program, const std::filesystem::path& dir,
                 const std::string& token_label) {
        const auto socket = dir / "p11kit.sock";
        const auto out = dir / "p11kit.out";
        log_ = dir / "p11kit.log";
        const std::string provider = SoftHsmToken::module_path();
        const std::string uri = "pkcs11:token=" + pkcs11_uri_encode(token_label);
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            // SOFTHSM2_CONF is inherited: the fixture set it in this process.
            const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            const int e = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            ::dup2(in, 0);
            ::dup2(o, 1);
            ::dup2(e, 2);
            ::execl(program.c_str(), program.c_str(), "server", "-f", "-s", "-n", socket.c_str(),
                    "--provider", provider.c_str(), uri.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        // It prints "P11_KIT_SERVER_ADDRESS=unix:path=...; export P11_KIT_SERVER_ADDRESS;"
        // once the socket listens.
        const std::regex line("P11_KIT_SERVER_ADDRESS=([^;\n]+);");
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            std::smatch m;
            const std::string text = std::filesystem::exists(out) ? read_file(out) : "";
            if (std::regex_search(text, m, line)) {
                address_ = m[1];
                return;
            }
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("p11-kit server exited during start:\n" + log());
            }
            std::this_thread::sleep_for(20ms);
        }
        throw std::runtime_error("p11-kit server printed no address within 10 s:\n" + log());
    }
    ~P11KitServer() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 250; ++i) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) return;
            std::this_thread::sleep_for(20ms);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    P11KitServer(const P11KitServer&) = delete;
    P11KitServer& operator=(const P11KitServer&) = delete;

    const std::string& address() const { return address_; }
    std::string log() const {
        std::error_code ec;
        return std::filesystem::exists(log_, ec) ? read_file(log_) : std::string();
    }

  private:
    pid_t pid_ = -1;
    std::filesystem::path log_;
    std::string address_;
};

// The example policy with every key ES256.
std::string es256_policy() {
    std::string text =
        read_file(std::filesystem::path(LICENTRA_SOURCE_DIR) / "policy" / "policy.example.yaml");
    text = std::regex_replace(text, std::regex("algorithm: EdDSA"), "algorithm: ES256");
    return text;
}

TEST(P11KitRemote, Es256DaemonBehindP11KitServerSignsAndItsAuditLogVerifies) {
    LICENTRA_REQUIRE_PROGRAM(p11kit, "p11-kit");
    const std::string client_module = p11kit_client_path();
    ASSERT_TRUE(std::filesystem::exists(client_module))
        << client_module << " is not installed; run scripts/setup (package p11-kit-modules)";

    const std::string policy = es256_policy();
    ASSERT_EQ(policy.find("EdDSA"), std::string::npos);
    Deployment deployment(policy);
    std::unique_ptr<P11KitServer> server;
    try {
        server = std::make_unique<P11KitServer>(p11kit, deployment.dir(),
                                                deployment.token().token_label());
    } catch (const std::exception& e) {
        FAIL() << e.what();
    }

    DaemonOptions o;
    o.name = "p11kit";
    o.hsm_module = client_module;
    o.environment = {{"P11_KIT_SERVER_ADDRESS", server->address()}};
    o.extra_config = "  key_algorithm: ES256\n";  // under audit:
    std::unique_ptr<Daemon> daemon;
    try {
        daemon = std::make_unique<Daemon>(deployment, o);
    } catch (const std::exception& e) {
        FAIL() << e.what() << "\np11-kit server:\n" << server->log();
    }

    // The published keys are all ES256 (P-256).
    auto jwks = daemon->request("license-server", "GET", "/.well-known/jwks.json");
    ASSERT_EQ(jwks.status, 200u) << jwks.body;
    const auto keys = nlohmann::json::parse(jwks.body)["keys"];
    ASSERT_FALSE(keys.empty());
    for (const auto& k : keys) {
        EXPECT_EQ(k.value("alg", ""), "ES256") << k.dump();
        EXPECT_EQ(k.value("crv", ""), "P-256") << k.dump();
    }

    std::vector<std::string> tokens;
    for (const std::string key : {"product-a", "product-b"}) {
        const std::string body = R"({"key":")" + key + R"(","claims":)" + example_claims(key) + "}";
        auto r = daemon->request("license-server", "POST", "/v1/tokens", body);
        ASSERT_EQ(r.status, 201u) << r.body << "\n" << daemon->log();
        auto j = nlohmann::json::parse(r.body);
        const std::string token = j["token"].get<std::string>();
        // The protected header says ES256.
        const std::string header = token.substr(0, token.find('.'));
        const auto decoded = core::base64url_decode(header);
        ASSERT_TRUE(decoded);
        const auto h = nlohmann::json::parse(
            std::string(reinterpret_cast<const char*>(decoded->data()), decoded->size()));
        EXPECT_EQ(h["alg"], "ES256");
        tokens.push_back(token);
    }

    // The offline CLI verifies each token against the published JWKS.
    const auto jwks_file = deployment.dir() / "jwks.json";
    write_file(jwks_file, jwks.body);
    for (const auto& t : tokens) {
        std::string out;
        EXPECT_EQ(run_command({binary("licentra"), "token", "verify", "-", "--jwks",
                               jwks_file.string(), "--json"},
                              &out, &t),
                  0)
            << out;
    }

    daemon->signal(SIGTERM);
    ASSERT_EQ(daemon->wait(), 0) << daemon->log();
    // Every token is in the log, and the auditor's offline check passes on it (ES256
    // checkpoints, signed-note type 0x02).
    std::string logged;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(daemon->audit_dir())) {
        if (entry.is_regular_file()) logged += read_file(entry.path());
    }
    for (const auto& t : tokens) {
        EXPECT_NE(logged.find(core::hex_encode(crypto::sha256(core::as_bytes(t)))),
                  std::string::npos);
    }
    std::string out;
    EXPECT_EQ(daemon->audit_verify(&out), 0) << out;
}

}  // namespace
}  // namespace licentra::test
