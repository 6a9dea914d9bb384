// High availability: three licentra-signd replicas on one token behind a real HAProxy in TCP
// mode (mTLS passed through), configured from config/haproxy.cfg.in exactly as scripts/ha does.
// Under a signing load one replica is SIGKILLed and started again: clients lose at most the
// requests that were in flight on it, HAProxy routes around it and back by its health checks,
// and every token a client received is in exactly one replica's audit log, which verifies.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/bytes.hpp"
#include "crypto/digest.hpp"
#include "support/daemon.hpp"

namespace licentra::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kReplicas = 3;
constexpr int kClientThreads = 3;
// Each client opens a new connection after this many requests, so HAProxy keeps spreading
// connections (it balances connections, not requests) and a restarted replica gets traffic.
constexpr int kRequestsPerConnection = 8;
constexpr int kMaxRequestsPerThread = 4000;
// The check timing in config/haproxy.cfg.in: inter 500ms, fall 2, rise 2.
constexpr milliseconds kCheckInter{500};
constexpr int kFall = 2;
constexpr int kRise = 2;
const char* const kBackend = "licentra_replicas";

// The example policy without the license server's signing rate limit: every request through
// HAProxy is then either a 201 or a transport failure, nothing in between.
std::string unlimited_policy() {
    std::string policy = example_policy_without_rate_limit();
    // product-a's 7-day publish-ahead removed: a rotation signs after the replicas agree.
    const std::string ahead = "      publish_ahead: 7d\n";
    if (auto at = policy.find(ahead); at != std::string::npos) policy.erase(at, ahead.size());
    return policy;
}

std::string sign_body() {
    return R"({"key":"product-a","claims":)" + example_claims("product-a") + "}";
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
        s.replace(pos, from.size(), to);
    }
    return s;
}

struct Backend {
    std::string name;
    std::uint16_t api_port;
    std::uint16_t ops_port;
};

// The same rendering as scripts/ha: placeholders replaced, a line that names a replica
// placeholder written once per replica.
std::string render_haproxy_config(std::uint16_t listen_port, std::uint16_t stats_port,
                                  const std::filesystem::path& socket,
                                  const std::vector<Backend>& backends) {
    std::istringstream in(
        read_file(std::filesystem::path(LICENTRA_SOURCE_DIR) / "config" / "haproxy.cfg.in"));
    std::string out;
    std::string line;
    while (std::getline(in, line)) {
        if (line.find("@REPLICA") != std::string::npos) {
            for (const auto& b : backends) {
                std::string l = replace_all(line, "@REPLICA_API_PORT@", std::to_string(b.api_port));
                l = replace_all(l, "@REPLICA_OPS_PORT@", std::to_string(b.ops_port));
                out += replace_all(l, "@REPLICA@", b.name) + "\n";
            }
            continue;
        }
        line = replace_all(line, "@LISTEN_PORT@", std::to_string(listen_port));
        line = replace_all(line, "@STATS_PORT@", std::to_string(stats_port));
        out += replace_all(line, "@STATS_SOCKET@", socket.string()) + "\n";
    }
    return out;
}

// One server row of HAProxy's "show stat".
struct ServerState {
    std::string status;        // "UP", "DOWN", "UP 1/2" (going down), "DOWN 1/2" (going up)
    std::string check_status;  // "L7OK", "L4CON", ...
    std::uint64_t sessions = 0;
};

// A real haproxy process in the foreground (-db), its output in a file.
class HaProxy {
  public:
    HaProxy(const std::string& program, const std::filesystem::path& config,
            std::filesystem::path socket, std::filesystem::path log)
        : socket_(std::move(socket)), log_(std::move(log)) {
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            const int out = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            ::dup2(in, 0);
            ::dup2(out, 1);
            ::dup2(out, 2);
            const std::string cfg = config.string();
            ::execl(program.c_str(), program.c_str(), "-db", "-f", cfg.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    HaProxy(const HaProxy&) = delete;
    HaProxy& operator=(const HaProxy&) = delete;
    ~HaProxy() {
        if (pid_ <= 0 || exited()) return;
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }

    bool exited() {
        int status = 0;
        if (!exited_ && ::waitpid(pid_, &status, WNOHANG) == pid_) exited_ = true;
        return exited_;
    }
    std::string log() const { return read_file(log_); }

    // One command on the runtime API (stats socket); empty if it cannot be reached.
    std::string command(const std::string& cmd) const {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return {};
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, socket_.c_str(), sizeof addr.sun_path - 1);
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::string out;
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
            const std::string line = cmd + "\n";
            if (::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
                char buf[4096];
                ssize_t n;
                while ((n = ::read(fd, buf, sizeof buf)) > 0) {
                    out.append(buf, static_cast<std::size_t>(n));
                }
            }
        }
        ::close(fd);
        return out;
    }

    // The servers of the replicas' backend, by name, from "show stat" (CSV with a header).
    std::map<std::string, ServerState> servers() const {
        std::map<std::string, ServerState> result;
        std::istringstream in(command("show stat"));
        std::string line;
        std::map<std::string, std::size_t> column;
        while (std::getline(in, line)) {
            std::vector<std::string> fields;
            std::istringstream row(line.rfind("# ", 0) == 0 ? line.substr(2) : line);
            std::string f;
            while (std::getline(row, f, ',')) fields.push_back(f);
            if (line.rfind("# ", 0) == 0) {
                for (std::size_t i = 0; i < fields.size(); ++i) column[fields[i]] = i;
                continue;
            }
            if (column.empty() || fields.size() <= column["check_status"]) continue;
            if (fields[column["pxname"]] != kBackend) continue;
            const std::string& name = fields[column["svname"]];
            if (name == "BACKEND" || name == "FRONTEND") continue;
            ServerState s;
            s.status = fields[column["status"]];
            s.check_status = fields[column["check_status"]];
            const std::string& stot = fields[column["stot"]];
            s.sessions = stot.empty() ? 0 : std::stoull(stot);
            result[name] = s;
        }
        return result;
    }

  private:
    std::filesystem::path socket_;
    std::filesystem::path log_;
    pid_t pid_ = -1;
    bool exited_ = false;
};

// Polls pred every 10 ms until it holds or the deadline passes; returns whether it held.
bool wait_until(const std::function<bool()>& pred, milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(milliseconds(10));
    }
    return pred();
}

std::uint64_t tokens_issued(Daemon& daemon) {
    const auto metrics = daemon.ops_get("/metrics");
    static const std::regex re(R"((^|\n)licentra_tokens_issued_total (\d+))");
    std::smatch m;
    if (metrics.status != 200 || !std::regex_search(metrics.body, m, re)) return 0;
    return std::stoull(m[2].str());
}

std::string audit_text(const std::filesystem::path& dir) {
    std::string all;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.is_regular_file()) all += read_file(e.path());
    }
    return all;
}

struct Outcome {
    Clock::time_point start;
    Clock::time_point end;
    unsigned status = 0;  // 0: transport failure
    std::string token;
    std::string error;
};

// kClientThreads license servers signing through HAProxy as fast as they can, each with the
// harness's mTLS client, a fresh connection every kRequestsPerConnection requests and after a
// failure.
class SigningLoad {
  public:
    SigningLoad(Deployment& deployment, std::uint16_t port) : outcomes_(kClientThreads) {
        const auto& cert = deployment.client_cert("license-server");
        net::ClientOptions options;
        options.server = {"127.0.0.1", port};
        options.tls = {deployment.pki().ca_file(), cert.cert, cert.key};
        options.timeout = std::chrono::seconds(10);
        for (int t = 0; t < kClientThreads; ++t) {
            threads_.emplace_back([this, options, t] { run(options, outcomes_[t]); });
        }
    }
    SigningLoad(const SigningLoad&) = delete;
    SigningLoad& operator=(const SigningLoad&) = delete;
    ~SigningLoad() { stop(); }

    std::uint64_t succeeded() const { return succeeded_.load(); }
    std::uint64_t failed() const { return failed_.load(); }

    // Stops the clients and returns every outcome.
    std::vector<Outcome> stop() {
        stop_ = true;
        for (auto& t : threads_) {
            if (t.joinable()) t.join();
        }
        std::vector<Outcome> all;
        for (auto& o : outcomes_) all.insert(all.end(), o.begin(), o.end());
        return all;
    }

  private:
    void run(const net::ClientOptions& options, std::vector<Outcome>& out) {
        std::optional<net::Client> client;
        int on_connection = 0;
        for (int i = 0; i < kMaxRequestsPerThread && !stop_.load(); ++i) {
            if (!client || on_connection == kRequestsPerConnection) {
                if (client) client->close();
                auto created = net::Client::create(options);
                if (!created) {
                    out.push_back({Clock::now(), Clock::now(), 0, {}, created.error().to_string()});
                    ++failed_;
                    return;
                }
                client.emplace(std::move(*created));
                on_connection = 0;
            }
            ++on_connection;
            Outcome o;
            o.start = Clock::now();
            auto r = client->request("POST", "/v1/tokens", sign_body(), "application/json");
            o.end = Clock::now();
            if (!r) {
                o.error = r.error().to_string();
                client.reset();
                ++failed_;
            } else {
                o.status = r->status;
                if (r->status == 201) {
                    auto doc = nlohmann::json::parse(r->body, nullptr, false);
                    if (!doc.is_discarded() && doc.contains("token")) o.token = doc["token"];
                    ++succeeded_;
                } else {
                    o.error = r->body;
                    ++failed_;
                }
            }
            out.push_back(std::move(o));
        }
    }

    std::vector<std::vector<Outcome>> outcomes_;
    std::vector<std::thread> threads_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> succeeded_{0};
    std::atomic<std::uint64_t> failed_{0};
};

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

TEST(HighAvailability, DeploymentGuideShowsTheHaproxyTemplateVerbatim) {
    const std::filesystem::path source(LICENTRA_SOURCE_DIR);
    const std::string tmpl = read_file(source / "config" / "haproxy.cfg.in");
    ASSERT_FALSE(tmpl.empty());
    EXPECT_NE(read_file(source / "docs" / "deployment.md").find("```haproxy\n" + tmpl + "```\n"),
              std::string::npos)
        << "docs/deployment.md must show config/haproxy.cfg.in verbatim";
}

TEST(HighAvailability, SigkilledReplicaCostsOnlyItsInFlightRequestsAndEveryTokenIsInOneLog) {
    LICENTRA_REQUIRE_PROGRAM(haproxy_program, "haproxy");
    Deployment deployment(unlimited_policy());
    // One after the other: the first start generates the keys on the token, the others load them.
    std::vector<std::unique_ptr<Daemon>> replicas;
    std::vector<Backend> backends;
    for (int i = 1; i <= kReplicas; ++i) {
        DaemonOptions options;
        options.name = "replica-" + std::to_string(i);
        replicas.push_back(std::make_unique<Daemon>(deployment, options));
        backends.push_back(
            {options.name, replicas.back()->api_port(), replicas.back()->ops_port()});
    }
    const auto socket = deployment.dir() / "haproxy.sock";
    const auto config = deployment.dir() / "haproxy.cfg";
    const std::uint16_t port = free_port();
    write_file(config, render_haproxy_config(port, free_port(), socket, backends));
    ASSERT_FALSE(std::regex_search(read_file(config), std::regex("@[A-Z_]+@")))
        << read_file(config);
    HaProxy haproxy(haproxy_program, config, socket, deployment.dir() / "haproxy.log");

    // HAProxy is ready when each replica passed its HTTP check on /readyz.
    auto all_checked_up = [&] {
        const auto servers = haproxy.servers();
        int up = 0;
        for (const auto& b : backends) {
            auto it = servers.find(b.name);
            if (it != servers.end() && it->second.status == "UP" &&
                it->second.check_status == "L7OK") {
                ++up;
            }
        }
        return up == kReplicas;
    };
    ASSERT_TRUE(
        wait_until([&] { return haproxy.exited() || all_checked_up(); }, milliseconds(10000)))
        << haproxy.command("show stat") << haproxy.log();
    ASSERT_FALSE(haproxy.exited()) << haproxy.log();
    ASSERT_TRUE(all_checked_up()) << haproxy.command("show stat");

    SigningLoad load(deployment, port);

    // a. Every replica signs under the load: each one's own counter moves.
    auto every_replica_signed = [&](std::uint64_t at_least) {
        for (auto& r : replicas) {
            if (tokens_issued(*r) < at_least) return false;
        }
        return true;
    };
    ASSERT_TRUE(wait_until([&] { return every_replica_signed(10); }, milliseconds(20000)))
        << "tokens issued through HAProxy: " << load.succeeded() << ", failures " << load.failed()
        << "\n"
        << haproxy.command("show stat");
    ASSERT_EQ(load.failed(), 0u);
    for (const auto& b : backends) EXPECT_GT(haproxy.servers()[b.name].sessions, 0u) << b.name;

    // A rotation opened through one replica and approved through another is executed once
    // and then used by every replica (docs/adr/0004), while the load goes on.
    auto opened = replicas[0]->request("officer-a", "POST", "/v1/keys/product-a/rotations");
    ASSERT_EQ(opened.status, 202u) << opened.body;
    const std::string request_id = nlohmann::json::parse(opened.body)["id"];
    auto approved =
        replicas[2]->request("officer-b", "POST", "/v1/requests/" + request_id + "/approve");
    ASSERT_EQ(approved.status, 200u) << approved.body;
    const auto approved_view = nlohmann::json::parse(approved.body);
    ASSERT_EQ(approved_view["state"], "executed") << approved.body;
    const std::string new_kid = approved_view["result"]["kid"];
    for (auto& r : replicas) {
        ASSERT_TRUE(wait_until(
            [&] {
                auto t = r->request("license-server", "POST", "/v1/tokens", sign_body());
                return t.status == 201 && nlohmann::json::parse(t.body)["kid"] == new_kid;
            },
            milliseconds(10000)))
            << r->log();
    }
    EXPECT_EQ(load.failed(), 0u);

    // b. SIGKILL one replica mid-load; HAProxy marks it down by its checks alone.
    Daemon& victim = *replicas[1];
    const std::string victim_name = backends[1].name;
    const auto killed_at = Clock::now();
    victim.signal(SIGKILL);
    ASSERT_EQ(victim.wait(), -1);
    const auto reaped_at = Clock::now();
    ASSERT_TRUE(wait_until([&] { return haproxy.servers()[victim_name].status == "DOWN"; },
                           milliseconds(10000)))
        << haproxy.command("show stat");
    const auto down_at = Clock::now();
    const std::uint64_t succeeded_at_down = load.succeeded();
    // The load goes on through the two survivors.
    ASSERT_TRUE(
        wait_until([&] { return load.succeeded() >= succeeded_at_down + 50; }, milliseconds(15000)))
        << "failures " << load.failed();
    const std::uint64_t failed_while_down = load.failed();

    // Started again on the same audit directory and ports; HAProxy marks it up by its checks.
    victim.restart();
    const auto ready_at = Clock::now();
    ASSERT_TRUE(wait_until([&] { return haproxy.servers()[victim_name].status == "UP"; },
                           milliseconds(10000)))
        << haproxy.command("show stat");
    const auto up_at = Clock::now();
    // New connections reach it again: the restarted process signs (its counter starts at 0).
    ASSERT_TRUE(wait_until([&] { return tokens_issued(victim) >= 10; }, milliseconds(20000)))
        << haproxy.command("show stat");
    const std::vector<Outcome> outcomes = load.stop();
    EXPECT_EQ(load.failed(), failed_while_down) << "a request failed after the replica was back";

    const double down_ms = ms_between(killed_at, down_at);
    const double up_ms = ms_between(ready_at, up_at);
    std::size_t failures = 0;
    std::size_t issued = 0;
    for (const auto& o : outcomes) {
        if (o.status == 201) {
            EXPECT_FALSE(o.token.empty());
            ++issued;
            continue;
        }
        ++failures;
        std::cout << "[ info ] failed request: started " << ms_between(killed_at, o.start)
                  << " ms, ended " << ms_between(killed_at, o.end)
                  << " ms after the kill (reaped at " << ms_between(killed_at, reaped_at)
                  << " ms, down at " << down_ms << " ms): " << o.error << "\n";
        // Only a request on the dying replica fails: one in flight at the kill (typically a
        // TLS handshake HAProxy had just forwarded to it), or one sent on a keep-alive
        // connection to it before HAProxy noticed. It ended after the kill and started before
        // HAProxy marked the replica down; nothing fails later. No HTTP error status: only the
        // transport fails.
        EXPECT_EQ(o.status, 0u) << o.error;
        EXPECT_TRUE(o.start < down_at)
            << "failed " << ms_between(killed_at, o.start) << " ms after the kill: " << o.error;
        EXPECT_TRUE(o.end > killed_at) << o.error;
    }
    EXPECT_LE(failures, static_cast<std::size_t>(kClientThreads));
    // Marked down within fall × inter of the kill (plus one interval of check phase and
    // slack for a loaded machine); up again within rise × inter of readiness, likewise.
    EXPECT_LE(down_ms, static_cast<double>(((kFall + 1) * kCheckInter).count()) + 1000.0);
    EXPECT_LE(up_ms, static_cast<double>(((kRise + 1) * kCheckInter).count()) + 1000.0);
    std::cout << "[ info ] " << outcomes.size() << " signing requests through HAProxy, " << issued
              << " tokens, " << failures << " failed (in flight at the kill); "
              << "marked down " << down_ms << " ms after SIGKILL, up " << up_ms
              << " ms after the restarted replica was ready\n";
    for (const auto& b : backends) {
        std::cout << "[ info ] " << b.name << ": " << haproxy.servers()[b.name].sessions
                  << " connections\n";
    }

    // c. Stop every replica cleanly (final checkpoints); then every token a client received is
    // in exactly one replica's audit log, by its SHA-256 (the log never holds the token).
    for (auto& r : replicas) r->signal(SIGTERM);
    for (auto& r : replicas) EXPECT_EQ(r->wait(), 0) << r->log();
    std::vector<std::string> logs;
    for (auto& r : replicas) logs.push_back(audit_text(r->audit_dir()));
    std::vector<std::size_t> per_replica(replicas.size(), 0);
    std::set<std::string> distinct;
    for (const auto& o : outcomes) {
        if (o.status != 201) continue;
        EXPECT_TRUE(distinct.insert(o.token).second) << "a token was returned twice";
        const std::string digest = core::hex_encode(crypto::sha256(core::as_bytes(o.token)));
        int holders = 0;
        for (std::size_t i = 0; i < logs.size(); ++i) {
            if (logs[i].find(digest) != std::string::npos) {
                ++holders;
                ++per_replica[i];
            }
        }
        EXPECT_EQ(holders, 1) << "token " << digest << " is in " << holders << " audit logs";
    }
    for (std::size_t i = 0; i < replicas.size(); ++i) {
        EXPECT_GT(per_replica[i], 0u) << backends[i].name << " holds no client's token";
        std::cout << "[ info ] " << backends[i].name << ": " << per_replica[i]
                  << " of the clients' tokens in its audit log\n";
    }

    // d. The auditor's offline check passes on every replica's log, the killed one included.
    for (auto& r : replicas) {
        std::string out;
        EXPECT_EQ(r->audit_verify(&out), 0) << r->audit_dir() << ": " << out;
    }
}

}  // namespace
}  // namespace licentra::test
