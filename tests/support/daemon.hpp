// Integration harness: a real licentra-signd process on a real SoftHSM token, with a test PKI
// whose CA is "CN=Licentra Dev CA" (so the example policy's identities apply), real TLS on
// loopback, and mTLS clients for each principal.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "net/client.hpp"
#include "support/softhsm.hpp"
#include "support/test_support.hpp"
#include "support/tls_certs.hpp"

namespace licentra::test {

// The example policy's principals, "officer-d" (a fourth officer for the replica tests'
// policy) and "stranger": a certificate from the same CA that no policy names.
inline const std::vector<std::string> kPrincipals = {
    "license-server", "officer-a", "officer-b", "officer-c", "officer-d", "auditor", "stranger"};

// A token, a PKI and a policy shared by one or more daemons.
class Deployment {
  public:
    // policy_yaml: the policy text; empty = policy/policy.example.yaml.
    explicit Deployment(std::string policy_yaml = {});
    ~Deployment();

    SoftHsmToken& token() { return *token_; }
    TestPki& pki() { return *pki_; }
    const std::filesystem::path& dir() const { return dir_.path(); }
    const std::filesystem::path& policy_file() const { return policy_file_; }
    const CertFiles& client_cert(const std::string& principal) const;
    const CertFiles& server_cert() const { return server_; }
    // Rewrites the policy file (for reload tests).
    void write_policy(const std::string& yaml);

  private:
    TempDir dir_;
    std::unique_ptr<SoftHsmToken> token_;
    std::unique_ptr<TestPki> pki_;
    CertFiles server_;
    std::map<std::string, CertFiles> clients_;
    std::filesystem::path policy_file_;
};

struct DaemonOptions {
    std::string name = "signd";  // audit origin suffix and directory name
    // Extra YAML appended under the top level (e.g. "limits:\n  read_timeout: 2s\n").
    std::string extra_config;
    std::optional<std::uint64_t> file_size_limit;  // RLIMIT_FSIZE for the daemon (bytes)
    std::chrono::seconds ready_timeout{60};
    // PKCS#11 module for hsm.module; empty = SoftHSM2's (e.g. libp11fault.so in front of it).
    std::string hsm_module;
    // Extra lines under "hsm:" (e.g. "  call_timeout: 1s\n").
    std::string hsm_config;
    // Extra keys appended under "audit:" (each line indented two spaces).
    std::string audit_config;
    // Extra environment variables of the daemon process (e.g. P11FAULT_CONTROL).
    std::vector<std::pair<std::string, std::string>> environment;
};

struct HttpResult {
    unsigned status = 0;
    std::string body;
    std::string content_type;
    std::string request_id;
    std::string allow;  // the Allow header (405)
};

class Daemon {
  public:
    // Starts licentra-signd and waits until /readyz answers 200. Throws std::runtime_error with
    // the daemon's log on failure.
    Daemon(Deployment& deployment, DaemonOptions options = {});
    ~Daemon();  // SIGTERM, then SIGKILL after 20 s

    std::uint16_t api_port() const { return api_port_; }
    std::uint16_t ops_port() const { return ops_port_; }
    const std::filesystem::path& audit_dir() const { return audit_dir_; }
    const std::filesystem::path& config_file() const { return config_file_; }
    pid_t pid() const { return pid_; }
    std::string log() const;
    // "running", "exited with status N" or "killed by signal S (name)": for failure messages
    // when the daemon stops answering (reaps the process if it ended).
    std::string process_state();
    std::filesystem::path verifier_key_file() const { return audit_dir_ / "verifier.vkey"; }
    // Runs the auditor's offline check, `licentra audit verify`, on this daemon's log; returns
    // its exit status and puts its output in *output.
    int audit_verify(std::string* output) const;

    // One request over a fresh mTLS connection as `principal`.
    HttpResult request(const std::string& principal, const std::string& method,
                       const std::string& target, const std::string& body = {});
    // A keep-alive client for `principal`.
    net::Client client(const std::string& principal);
    // Plain HTTP GET on the operations listener.
    HttpResult ops_get(const std::string& path);

    void signal(int sig);
    // Waits for the process to exit; returns its exit status (or -1 on a signal).
    int wait(std::chrono::seconds timeout = std::chrono::seconds(30));
    // Starts the daemon again after it exited (wait() returned), with the same configuration:
    // same ports, audit directory and origin; its output is appended to log(). Waits for
    // /readyz like the constructor. Throws std::logic_error while the process still runs,
    // std::runtime_error with the log if the start fails.
    void restart();

  private:
    void start();

    Deployment& deployment_;
    DaemonOptions options_;
    TempDir dir_;
    std::filesystem::path audit_dir_;
    std::filesystem::path config_file_;
    std::filesystem::path log_file_;
    std::uint16_t api_port_ = 0;
    std::uint16_t ops_port_ = 0;
    pid_t pid_ = -1;
    bool exited_ = false;
    int exit_status_ = 0;  // waitpid status once exited_
};

// A free TCP port on 127.0.0.1 (bound and released).
std::uint16_t free_port();

// Path of a built binary: "licentra" or "licentra-signd".
std::string binary(const std::string& name);

// A claims object that satisfies the example policy for key, expiring in `seconds`.
std::string example_claims(const std::string& key, long seconds = 3600);

// policy/policy.example.yaml without the license server's signing rate limit: under a load
// every answer is then about what the test exercises, never 429.
std::string example_policy_without_rate_limit();

}  // namespace licentra::test
