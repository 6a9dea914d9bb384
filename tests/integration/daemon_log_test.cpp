// The daemon's operational log as an operator reads it: JSON lines, one access line per API
// response carrying its request id, and nothing secret (docs/operations.md#logs).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "support/daemon.hpp"

namespace licentra::test {
namespace {

std::string sign_body(const std::string& key, const std::string& sub) {
    const long exp = static_cast<long>(std::time(nullptr)) + 3600;
    if (key == "product-b") {
        return R"({"key":"product-b","claims":{"sub":")" + sub +
               R"(","product":"product-b","seats":5,"exp":)" + std::to_string(exp) + "}}";
    }
    return R"({"key":")" + key + R"(","claims":{"sub":")" + sub + R"(","product":")" + key +
           R"(","edition":"pro","features":["export","sso"],"seats":25,"exp":)" +
           std::to_string(exp) + "}}";
}

// The base64 lines of a PEM file (its key material).
std::vector<std::string> pem_body(const std::filesystem::path& file) {
    std::vector<std::string> out;
    std::istringstream in(read_file(file));
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.rfind("-----", 0) != 0) out.push_back(line);
    }
    return out;
}

TEST(DaemonLog, EveryResponseHasItsAccessLineAndNoSecretReachesTheLog) {
    Deployment deployment;
    Daemon daemon(deployment);

    struct Sent {
        std::string principal;
        HttpResult result;
    };
    std::vector<Sent> sent;
    std::vector<std::string> secrets = {deployment.token().user_pin(), deployment.token().so_pin()};
    const auto send = [&](const std::string& principal, const std::string& method,
                          const std::string& target, const std::string& body = {}) {
        sent.push_back({principal, daemon.request(principal, method, target, body)});
        return sent.back().result;
    };
    for (int i = 0; i < 4; ++i) {
        const std::string sub = "licensee-zq" + std::to_string(i) + "-x7";
        secrets.push_back(sub);
        const auto r = send("license-server", "POST", "/v1/tokens",
                            sign_body(i % 2 == 0 ? "product-a" : "product-b", sub));
        ASSERT_EQ(r.status, 201u) << r.body;
        const std::string token = nlohmann::json::parse(r.body)["token"];
        secrets.push_back(token);
        secrets.push_back(token.substr(token.rfind('.') + 1));  // the signature alone
    }
    // A forbidden claim (422): its value is named nowhere.
    secrets.push_back("mail-zq-probe@example.com");
    const long exp = static_cast<long>(std::time(nullptr)) + 3600;
    EXPECT_EQ(send("license-server", "POST", "/v1/tokens",
                   R"({"key":"product-a","claims":{"sub":"licensee-zq9","product":"product-a",)"
                   R"("email":"mail-zq-probe@example.com","exp":)" +
                       std::to_string(exp) + "}}")
                  .status,
              422u);
    secrets.push_back("licensee-zq9");
    EXPECT_EQ(send("license-server", "POST", "/v1/tokens", R"({"key":)").status, 400u);
    EXPECT_EQ(
        send("officer-a", "POST", "/v1/tokens", sign_body("product-a", "licensee-zq8")).status,
        403u);
    secrets.push_back("licensee-zq8");
    EXPECT_EQ(send("license-server", "GET", "/v1/tokens").status, 405u);
    EXPECT_EQ(send("auditor", "GET", "/v1/no-such-route?secret-query=zq7").status, 404u);
    secrets.push_back("secret-query=zq7");
    EXPECT_EQ(send("auditor", "GET", "/.well-known/jwks.json").status, 200u);
    EXPECT_EQ(send("officer-a", "GET", "/v1/keys/product-a").status, 200u);
    for (const auto& file :
         {deployment.server_cert().key, deployment.client_cert("license-server").key}) {
        for (const auto& line : pem_body(file)) secrets.push_back(line);
    }

    daemon.signal(SIGTERM);
    ASSERT_EQ(daemon.wait(), 0) << daemon.log();
    const std::string log = daemon.log();

    // Every line is one JSON object with the four fields every line has.
    const std::regex rfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
    std::map<std::string, nlohmann::json> access;  // request id -> access line
    std::set<std::string> events;
    std::istringstream lines(log);
    std::size_t count = 0;
    for (std::string line; std::getline(lines, line);) {
        if (line.empty()) continue;
        ++count;
        const auto j = nlohmann::json::parse(line, nullptr, false);
        ASSERT_TRUE(j.is_object()) << "not a JSON line: " << line;
        ASSERT_TRUE(j.contains("ts") && j.contains("level") && j.contains("event") &&
                    j.contains("msg"))
            << line;
        EXPECT_TRUE(std::regex_match(j["ts"].get<std::string>(), rfc3339)) << line;
        events.insert(j["event"].get<std::string>());
        if (j["event"] == "http.request") access[j["request_id"]] = j;
    }
    EXPECT_GT(count, sent.size());
    for (const char* e : {"audit.opened", "daemon.ready", "daemon.stopping", "daemon.stopped"}) {
        EXPECT_TRUE(events.count(e)) << e << " missing in\n" << log;
    }

    // One access line per response, found by the id the client got.
    for (const auto& s : sent) {
        ASSERT_FALSE(s.result.request_id.empty());
        ASSERT_TRUE(access.count(s.result.request_id))
            << s.result.request_id << " (" << s.result.status << ") not in\n"
            << log;
        const auto& a = access.at(s.result.request_id);
        EXPECT_EQ(a["status"], s.result.status) << a.dump();
        EXPECT_EQ(a["principal"], s.principal) << a.dump();
        EXPECT_EQ(a["listener"], "api");
        EXPECT_EQ(a["level"], "info");
        EXPECT_GE(a["duration_ms"].get<double>(), 0.0);
    }
    EXPECT_EQ(access.at(sent[0].result.request_id)["route"], "/v1/tokens");
    // The key and the kid that signed are named on a token's line, the key on a key route's.
    EXPECT_EQ(access.at(sent[0].result.request_id)["key"], "product-a");
    EXPECT_EQ(access.at(sent[0].result.request_id)["kid"],
              nlohmann::json::parse(sent[0].result.body)["kid"]);
    EXPECT_EQ(access.at(sent.back().result.request_id)["key"], "product-a");
    EXPECT_FALSE(access.at(sent.back().result.request_id).contains("kid"));
    EXPECT_EQ(access.at(sent.back().result.request_id)["route"], "/v1/keys/{key}");
    EXPECT_EQ(access.at(sent[sent.size() - 3].result.request_id)["route"], "unmatched");

    // Nothing secret, anywhere in the log.
    for (const auto& secret : secrets) {
        ASSERT_FALSE(secret.empty());
        EXPECT_EQ(log.find(secret), std::string::npos) << "the log holds a secret: " << secret;
    }
    EXPECT_EQ(log.find("PRIVATE KEY"), std::string::npos);
}

TEST(DaemonLog, TextFormatAndLevelAreHonoured) {
    Deployment deployment;
    DaemonOptions o;
    o.extra_config = "log:\n  format: text\n  level: warning\n";
    Daemon daemon(deployment, o);
    const auto r = daemon.request("auditor", "GET", "/.well-known/jwks.json");
    EXPECT_EQ(r.status, 200u);
    // A warning: a handshake that is not TLS at all.
    {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        ASSERT_GE(fd, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(daemon.api_port());
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        const std::string garbage = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        ASSERT_EQ(::write(fd, garbage.data(), garbage.size()),
                  static_cast<ssize_t>(garbage.size()));
        char buf[256];
        while (::read(fd, buf, sizeof buf) > 0) {
        }  // until the daemon closes the connection
        ::close(fd);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (daemon.log().find("TLS handshake failed") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    daemon.signal(SIGTERM);
    ASSERT_EQ(daemon.wait(), 0) << daemon.log();
    const std::string log = daemon.log();
    // Info lines (ready, access lines) are below the level; nothing is JSON.
    EXPECT_EQ(log.find(r.request_id), std::string::npos) << log;
    EXPECT_EQ(log.find("ready:"), std::string::npos) << log;
    EXPECT_EQ(log.find("{\"ts\""), std::string::npos) << log;
    EXPECT_NE(log.find("licentra-signd: net: TLS handshake failed from 127.0.0.1:"),
              std::string::npos)
        << log;
}

}  // namespace
}  // namespace licentra::test
