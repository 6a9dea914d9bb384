#include "support/daemon.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <stdexcept>
#include <thread>

namespace licentra::test {
namespace {

const char* kServerName = "server";

}  // namespace

std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

std::string binary(const std::string& name) {
    return std::string(LICENTRA_BINARY_DIR) + "/src/app/" + name;
}

std::string example_policy_without_rate_limit() {
    std::string policy =
        read_file(std::filesystem::path(LICENTRA_SOURCE_DIR) / "policy" / "policy.example.yaml");
    const std::string limit = "signing_rate_limit:";
    if (const auto pos = policy.find(limit); pos != std::string::npos) {
        policy.erase(pos, policy.find('\n', pos) - pos);
    }
    return policy;
}

std::string example_claims(const std::string& key, long seconds) {
    const long exp = static_cast<long>(std::time(nullptr)) + seconds;
    if (key == "product-b") {
        return R"({"sub":"customer-4711","product":"product-b","seats":5,"exp":)" +
               std::to_string(exp) + "}";
    }
    return R"({"sub":"customer-4711","product":")" + key +
           R"(","edition":"pro","features":["export","sso"],"seats":25,"exp":)" +
           std::to_string(exp) + "}";
}

Deployment::Deployment(std::string policy_yaml) {
    token_ = std::make_unique<SoftHsmToken>("licentra-it");
    pki_ = std::make_unique<TestPki>(dir_.path(), "Licentra Dev CA");
    server_ = pki_->server(kServerName);
    for (const auto& p : kPrincipals) clients_[p] = pki_->client(p, p);
    policy_file_ = dir_.path() / "policy.yaml";
    if (policy_yaml.empty()) {
        policy_yaml = read_file(std::filesystem::path(LICENTRA_SOURCE_DIR) / "policy" /
                                "policy.example.yaml");
    }
    write_policy(policy_yaml);
}

Deployment::~Deployment() = default;

const CertFiles& Deployment::client_cert(const std::string& principal) const {
    return clients_.at(principal);
}

void Deployment::write_policy(const std::string& yaml) { write_file(policy_file_, yaml, 0644); }

Daemon::Daemon(Deployment& deployment, DaemonOptions options)
    : deployment_(deployment), options_(std::move(options)) {
    audit_dir_ = dir_.path() / "audit";
    config_file_ = dir_.path() / "signd.yaml";
    log_file_ = dir_.path() / "signd.log";
    api_port_ = free_port();
    // The kernel may hand the same ephemeral port out twice in a row once it is released.
    do {
        ops_port_ = free_port();
    } while (ops_port_ == api_port_);
    auto& tok = deployment.token();
    std::string cfg;
    cfg += "listen: { address: 127.0.0.1, port: " + std::to_string(api_port_) + " }\n";
    cfg += "operations: { address: 127.0.0.1, port: " + std::to_string(ops_port_) + " }\n";
    cfg += "tls:\n  cert: " + deployment.server_cert().cert.string() +
           "\n  key: " + deployment.server_cert().key.string() +
           "\n  client_ca: " + deployment.pki().ca_file().string() + "\n";
    const std::string module =
        options_.hsm_module.empty() ? SoftHsmToken::module_path() : options_.hsm_module;
    cfg += "hsm:\n  module: " + module + "\n  token_uri: \"" + tok.uri() +
           "\"\n  session_pool: 4\n" + options_.hsm_config;
    cfg += "policy:\n  path: " + deployment.policy_file().string() + "\n";
    cfg += "audit:\n  dir: " + audit_dir_.string() + "\n  origin: test/licentra/" + options_.name +
           "\n" + options_.audit_config;
    cfg += options_.extra_config;
    write_file(config_file_, cfg, 0600);
    start();
}

void Daemon::restart() {
    if (!exited_) throw std::logic_error("Daemon::restart: the daemon is still running");
    exited_ = false;
    start();
}

void Daemon::start() {
    const std::string conf = deployment_.token().conf_path().string();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        // Appends: a restarted daemon's output follows that of its previous run.
        int out = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(out, 2);
        ::setenv("SOFTHSM2_CONF", conf.c_str(), 1);
        for (const auto& [name, value] : options_.environment) {
            ::setenv(name.c_str(), value.c_str(), 1);
        }
        if (options_.file_size_limit) {
            // Writes past the limit fail with EFBIG (the daemon must survive, not die of
            // SIGXFSZ): the closest unprivileged stand-in for a full disk.
            ::signal(SIGXFSZ, SIG_IGN);
            rlimit lim{*options_.file_size_limit, *options_.file_size_limit};
            ::setrlimit(RLIMIT_FSIZE, &lim);
        }
        std::string bin = binary("licentra-signd");
        std::string cfgs = config_file_.string();
        ::execl(bin.c_str(), bin.c_str(), "--config", cfgs.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            exited_ = true;
            throw std::runtime_error("licentra-signd exited during start:\n" + log());
        }
        auto r = ops_get("/readyz");
        if (r.status == 200) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    signal(SIGKILL);
    wait();
    throw std::runtime_error("licentra-signd did not become ready:\n" + log());
}

Daemon::~Daemon() {
    if (!exited_ && pid_ > 0) {
        ::kill(pid_, SIGTERM);
        if (wait(std::chrono::seconds(20)) == -2) {
            ::kill(pid_, SIGKILL);
            wait();
        }
    }
}

std::string Daemon::log() const { return read_file(log_file_); }

std::string Daemon::process_state() {
    if (!exited_ && pid_ > 0) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            exited_ = true;
            exit_status_ = status;
        }
    }
    if (!exited_) return "running";
    if (WIFSIGNALED(exit_status_)) {
        return "killed by signal " + std::to_string(WTERMSIG(exit_status_)) + " (" +
               ::strsignal(WTERMSIG(exit_status_)) + ")";
    }
    return "exited with status " + std::to_string(WEXITSTATUS(exit_status_));
}

int Daemon::audit_verify(std::string* output) const {
    return run_command({binary("licentra"), "audit", "verify", "--dir", audit_dir_.string(),
                        "--key", verifier_key_file().string()},
                       output);
}

void Daemon::signal(int sig) {
    if (!exited_ && pid_ > 0) ::kill(pid_, sig);
}

int Daemon::wait(std::chrono::seconds timeout) {
    if (exited_) return -1;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            exited_ = true;
            exit_status_ = status;
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -2;  // still running
}

net::Client Daemon::client(const std::string& principal) {
    const auto& c = deployment_.client_cert(principal);
    net::ClientOptions o;
    o.server = {"127.0.0.1", api_port_};
    o.tls = {deployment_.pki().ca_file(), c.cert, c.key};
    o.timeout = std::chrono::seconds(30);
    auto client = net::Client::create(o);
    if (!client) throw std::runtime_error("client: " + client.error().to_string());
    return std::move(*client);
}

HttpResult Daemon::request(const std::string& principal, const std::string& method,
                           const std::string& target, const std::string& body) {
    auto c = client(principal);
    auto r = c.request(method, target, body, body.empty() ? "" : "application/json");
    HttpResult out;
    if (!r) {
        out.status = 0;
        out.body = r.error().to_string();
        return out;
    }
    out.status = r->status;
    out.body = r->body;
    out.content_type = r->content_type;
    for (const auto& h : r->headers) {
        if (strcasecmp(h.name.c_str(), "X-Request-Id") == 0) out.request_id = h.value;
        if (strcasecmp(h.name.c_str(), "Allow") == 0) out.allow = h.value;
    }
    return out;
}

HttpResult Daemon::ops_get(const std::string& path) {
    HttpResult out;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(ops_port_);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return out;
    }
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::write(fd, req.data(), req.size()) < 0) {
        ::close(fd);
        return out;
    }
    std::string resp;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    if (resp.rfind("HTTP/1.1 ", 0) != 0 || resp.size() < 12) return out;
    out.status = static_cast<unsigned>(std::stoul(resp.substr(9, 3)));
    auto sep = resp.find("\r\n\r\n");
    if (sep != std::string::npos) out.body = resp.substr(sep + 4);
    return out;
}

}  // namespace licentra::test
