// The mTLS server and the operations listener over real TLS on 127.0.0.1 (ephemeral ports),
// with a trivial echo Handler.
#include "net/server.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/bytes.hpp"
#include "net/client.hpp"
#include "net/identity.hpp"
#include "net/work_pool.hpp"
#include "support/test_support.hpp"
#include "support/tls_certs.hpp"
#include "tls_test_client.hpp"

namespace licentra::net {
namespace {

using namespace std::chrono_literals;
using testing::RawTls;
using testing::RawTlsOptions;

constexpr const char* kLicenseServerUri = "spiffe://licentra.dev/license-server";

struct Pki {
    test::TempDir dir;
    std::unique_ptr<test::TestPki> ca;
    std::unique_ptr<test::TestPki> other;
    test::CertFiles server, server2, client, expired, foreign;

    Pki() {
        ca = std::make_unique<test::TestPki>(dir.path());
        other = std::make_unique<test::TestPki>(dir.path(), "Other CA", "other-");
        server = ca->server();
        server2 = ca->issue(
            "server2", test::CertSpec{"reloaded", {}, {"localhost"}, {"127.0.0.1"}, true, false});
        client = ca->issue(
            "client", test::CertSpec{
                          "license-server", {kLicenseServerUri}, {"ls.example"}, {}, false, false});
        expired = ca->client("expired", "officer-a", {}, true);
        foreign = other->client("foreign", "license-server");
    }
};

// Echo: answers with what the server saw. Special paths exercise the Handler contract.
class EchoHandler final : public Handler {
  public:
    explicit EchoHandler(WorkPool* pool, std::atomic<int>* slow_entered = nullptr)
        : pool_(pool), slow_entered_(slow_entered) {}
    void handle(Request r, std::function<void(Response)> done) override {
        if (r.path == "/problem") {
            done(problem_response(ProblemKind::not_found, "no such thing", r.request_id));
            return;
        }
        if (r.path == "/throw") throw std::runtime_error("handler bug");
        if (r.path == "/forget") return;  // never calls done
        if (r.path == "/slow") {
            // Completes later from a pool thread, as HSM work does.
            if (slow_entered_ != nullptr) slow_entered_->fetch_add(1);
            (void)pool_->post([r = std::move(r), done] {
                std::this_thread::sleep_for(100ms);
                done(Response{200, "text/plain", "slow " + r.request_id, {}, {}, {}, {}, {}});
            });
            return;
        }
        nlohmann::json j = {
            {"method", r.method},
            {"path", r.path},
            {"query", r.query},
            {"body", r.body},
            {"content_type", r.content_type},
            {"authenticated", r.authenticated},
            {"cn", r.identity.subject_cn},
            {"issuer", r.identity.issuer_dn},
            {"uris", r.identity.san_uris},
            {"dns", r.identity.san_dns},
            {"spki", core::hex_encode(r.identity.spki_sha256)},
            {"connection_id", r.connection_id},
            {"request_id", r.request_id},
        };
        Response res{200, "application/json", j.dump(), {{"X-Echo", "1"}}, {}, {}, {}, {}};
        if (r.path == "/async") {
            std::thread([done, res] { done(res); }).detach();
            return;
        }
        done(std::move(res));
    }

  private:
    WorkPool* pool_;
    std::atomic<int>* slow_entered_;
};

class ServerTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { pki_ = new Pki(); }
    static void TearDownTestSuite() {
        delete pki_;
        pki_ = nullptr;
    }

    void start(Limits limits = {}, Limits ops_limits = {}) {
        raise_fd_limit();
        ServerOptions options;
        options.api = {"127.0.0.1", 0};
        options.ops = ListenAddress{"127.0.0.1", 0};
        options.tls = {pki_->server.cert, pki_->server.key, pki_->ca->ca_file()};
        options.limits = limits;
        options.ops_limits = ops_limits;
        options.io_threads = 2;
        options.log = [this](std::string_view line) {
            std::lock_guard lock(log_mutex_);
            log_.emplace_back(line);
        };
        auto ops =
            std::make_shared<FunctionHandler>([](Request r, std::function<void(Response)> done) {
                if (r.path == "/healthz") {
                    done(Response{200, "text/plain", "ok", {}, {}, {}, {}, {}});
                } else {
                    done(problem_response(ProblemKind::not_found, "not here", r.request_id));
                }
            });
        auto server =
            Server::create(options, std::make_shared<EchoHandler>(&pool_, &slow_entered_), ops);
        ASSERT_TRUE(server.ok()) << server.error().to_string();
        server_ = std::move(server).value();
        ASSERT_TRUE(server_->start().ok());
        port_ = server_->api_port();
        ASSERT_NE(port_, 0);
    }

    void TearDown() override {
        if (server_) server_->stop(1s);
    }

    RawTlsOptions good() const { return {pki_->ca->ca_file(), pki_->client}; }

    Client client() const {
        ClientOptions o;
        o.server = {"127.0.0.1", port_};
        o.tls = {pki_->ca->ca_file(), pki_->client.cert, pki_->client.key};
        o.timeout = 5s;
        auto c = Client::create(o);
        EXPECT_TRUE(c.ok()) << c.error().to_string();
        return std::move(c).value();
    }

    static std::string header(const Response& r, std::string_view name) {
        for (const auto& h : r.headers) {
            if (h.name.size() == name.size() &&
                std::equal(h.name.begin(), h.name.end(), name.begin(),
                           [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
                return h.value;
            }
        }
        return {};
    }

    // True when a full mTLS request succeeds with these options.
    bool served(const RawTlsOptions& o) const {
        const std::string out = testing::tls_exchange(
            port_, o, "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        return out.rfind("HTTP/1.1 200", 0) == 0;
    }

    // The server counts a failure after sending its alert, so the client may see the failure
    // first: wait briefly for the counter.
    std::uint64_t failures_at_least(std::uint64_t n) const {
        const auto until = std::chrono::steady_clock::now() + 2s;
        while (server_->handshake_failures() < n && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(5ms);
        }
        return server_->handshake_failures();
    }

    static Pki* pki_;
    WorkPool pool_{2};
    std::atomic<int> slow_entered_{0};  // requests that reached the /slow handler
    std::unique_ptr<Server> server_;
    std::uint16_t port_ = 0;
    std::mutex log_mutex_;
    std::vector<std::string> log_;
};

Pki* ServerTest::pki_ = nullptr;

TEST_F(ServerTest, ServesAValidClientAndExtractsItsIdentity) {
    start();
    auto c = client();
    auto r = c.request("POST", "/echo?a=1", "{\"k\":1}", "application/json");
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->status, 200u);
    const auto j = nlohmann::json::parse(r->body);
    EXPECT_EQ(j["method"], "POST");
    EXPECT_EQ(j["path"], "/echo");
    EXPECT_EQ(j["query"], "a=1");
    EXPECT_EQ(j["body"], "{\"k\":1}");
    EXPECT_EQ(j["content_type"], "application/json");
    EXPECT_EQ(j["authenticated"], true);
    EXPECT_EQ(j["cn"], "license-server");
    EXPECT_EQ(j["issuer"], "CN=Licentra Test CA");
    EXPECT_EQ(j["uris"], nlohmann::json::array({kLicenseServerUri}));
    EXPECT_EQ(j["dns"], nlohmann::json::array({"ls.example"}));

    // SPKI hash computed independently: DER SubjectPublicKeyInfo of the certificate's key.
    const std::string pem = test::read_file(pki_->client.cert);
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    unsigned char* der = nullptr;
    const int len = i2d_PUBKEY(X509_get0_pubkey(cert), &der);
    unsigned char md[32];
    unsigned int md_len = 0;
    EVP_Digest(der, static_cast<std::size_t>(len), md, &md_len, EVP_sha256(), nullptr);
    OPENSSL_free(der);
    X509_free(cert);
    BIO_free(bio);
    EXPECT_EQ(j["spki"], core::hex_encode(core::ByteView(md, md_len)));
    EXPECT_EQ(header(*r, "X-Echo"), "1");
}

TEST_F(ServerTest, RefusesHandshakeWithoutClientCertificate) {
    start();
    EXPECT_FALSE(served({pki_->ca->ca_file(), std::nullopt}));
    EXPECT_GE(failures_at_least(1), 1u);
}

TEST_F(ServerTest, RefusesCertificateFromAnotherCa) {
    start();
    EXPECT_FALSE(served({pki_->ca->ca_file(), pki_->foreign}));
    EXPECT_GE(failures_at_least(1), 1u);
}

TEST_F(ServerTest, RefusesExpiredCertificate) {
    start();
    EXPECT_FALSE(served({pki_->ca->ca_file(), pki_->expired}));
    EXPECT_GE(failures_at_least(1), 1u);
}

TEST_F(ServerTest, RefusesTls12) {
    start();
    RawTlsOptions o = good();
    o.max_version = TLS1_2_VERSION;
    RawTls conn(port_, o);
    EXPECT_FALSE(conn.handshake_ok());
    EXPECT_FALSE(served(o));
    EXPECT_TRUE(served(good()));  // and the same client over TLS 1.3 is fine

    LICENTRA_REQUIRE_PROGRAM(openssl, "openssl");
    std::string out;
    const std::string empty;
    const int rc =
        test::run_command({openssl, "s_client", "-connect", "127.0.0.1:" + std::to_string(port_),
                           "-tls1_2", "-CAfile", pki_->ca->ca_file().string(), "-cert",
                           pki_->client.cert.string(), "-key", pki_->client.key.string()},
                          &out, &empty);
    EXPECT_NE(rc, 0) << out;
    EXPECT_NE(out.find("alert protocol version"), std::string::npos) << out;
}

TEST_F(ServerTest, HandshakeFailuresAreCountedAndLogRateLimited) {
    start();
    for (int i = 0; i < 5; ++i) EXPECT_FALSE(served({pki_->ca->ca_file(), std::nullopt}));
    EXPECT_EQ(failures_at_least(5), 5u);
    std::lock_guard lock(log_mutex_);
    std::size_t lines = 0;
    for (const auto& l : log_) lines += l.find("handshake failed") != std::string::npos;
    EXPECT_GE(lines, 1u);
    EXPECT_LT(lines, 5u);
}

TEST_F(ServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
    start();
    auto c = client();
    std::set<std::string> connection_ids;
    std::set<std::string> request_ids;
    for (int i = 0; i < 5; ++i) {
        auto r = c.request("GET", "/echo");
        ASSERT_TRUE(r.ok()) << r.error().to_string();
        const auto j = nlohmann::json::parse(r->body);
        connection_ids.insert(std::to_string(j["connection_id"].get<std::uint64_t>()));
        request_ids.insert(header(*r, "X-Request-Id"));
        EXPECT_EQ(header(*r, "X-Request-Id"), j["request_id"]);
    }
    EXPECT_EQ(connection_ids.size(), 1u);
    EXPECT_EQ(request_ids.size(), 5u);
    EXPECT_TRUE(c.connected());
    EXPECT_EQ(server_->stats().connections_accepted, 1u);
}

TEST_F(ServerTest, ProblemJsonShapeAndRequestIdOnErrors) {
    start();
    auto c = client();
    auto r = c.request("GET", "/problem");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 404u);
    EXPECT_EQ(r->content_type, "application/problem+json");
    const auto j = nlohmann::json::parse(r->body);
    EXPECT_EQ(j["type"], "https://licentra.dev/problems/not-found");
    EXPECT_EQ(j["title"], "Not found");
    EXPECT_EQ(j["status"], 404);
    EXPECT_EQ(j["detail"], "no such thing");
    const std::string rid = header(*r, "X-Request-Id");
    EXPECT_EQ(rid.size(), 32u);
    EXPECT_EQ(j["request_id"], rid);
}

TEST_F(ServerTest, HandlerMayCompleteFromAnotherThreadOrFailSafely) {
    start();
    auto c = client();
    auto a = c.request("GET", "/async");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->status, 200u);
    auto s = c.request("GET", "/slow");
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->body, "slow " + header(*s, "X-Request-Id"));
    for (const char* path : {"/throw", "/forget"}) {
        auto r = c.request("GET", path);
        ASSERT_TRUE(r.ok()) << path;
        EXPECT_EQ(r->status, 500u) << path;
        EXPECT_EQ(nlohmann::json::parse(r->body)["type"], "https://licentra.dev/problems/internal");
    }
    auto again = c.request("GET", "/echo");  // the connection is still usable
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->status, 200u);
}

TEST_F(ServerTest, BodyOverLimitIs413) {
    start();
    const std::string body(64 * 1024 + 1, 'x');
    const std::string out = testing::tls_exchange(
        port_, good(),
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n\r\n" + body);
    ASSERT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out.substr(0, 200);
    EXPECT_NE(out.find("application/problem+json"), std::string::npos);
    EXPECT_NE(out.find("https://licentra.dev/problems/payload-too-large"), std::string::npos);
    EXPECT_NE(out.find("X-Request-Id: "), std::string::npos);

    // Exactly at the limit is fine.
    auto c = client();
    auto r = c.request("POST", "/echo", std::string(64 * 1024, 'y'), "text/plain");
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->status, 200u);
}

TEST_F(ServerTest, HeaderOverLimitIs431) {
    start();
    const std::string out = testing::tls_exchange(
        port_, good(),
        "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n");
    ASSERT_EQ(out.rfind("HTTP/1.1 431", 0), 0u) << out.substr(0, 200);
    EXPECT_NE(out.find("https://licentra.dev/problems/header-too-large"), std::string::npos);
}

TEST_F(ServerTest, MalformedHttpIs400AndTheServerStaysUp) {
    start();
    for (const char* garbage :
         {"GARBAGE\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
          "POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
          "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"}) {
        const std::string out = testing::tls_exchange(port_, good(), garbage);
        EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << garbage << " -> " << out.substr(0, 100);
        EXPECT_NE(out.find("https://licentra.dev/problems/bad-request"), std::string::npos);
    }
    EXPECT_TRUE(served(good()));
}

TEST_F(ServerTest, ObsoleteLineFoldingIsRefusedWith400) {
    start();
    for (const char* folded : {"GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n",
                               "GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\t2\r\n\r\n"}) {
        const std::string out = testing::tls_exchange(port_, good(), folded);
        EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out.substr(0, 100);
        EXPECT_NE(out.find("obsolete line folding"), std::string::npos) << out;
    }
    // Also when the fold arrives in a later read than the line it continues.
    RawTls trickled(port_, good());
    ASSERT_TRUE(trickled.send("GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n"));
    ASSERT_TRUE(trickled.send(" 2\r\n\r\n"));
    EXPECT_EQ(trickled.read_response().rfind("HTTP/1.1 400", 0), 0u);
    // A header section that arrives in pieces without a fold is served as before.
    RawTls pieces(port_, good());
    ASSERT_TRUE(pieces.send("GET /echo HTTP/1.1\r\nHost: x\r\n"));
    ASSERT_TRUE(pieces.send("X-A: 1 2\r\n\r\n"));
    EXPECT_EQ(pieces.read_response().rfind("HTTP/1.1 200", 0), 0u);
    EXPECT_TRUE(served(good()));
}

TEST_F(ServerTest, SlowlorisIsCutOffByTheWholeRequestDeadline) {
    Limits limits;
    limits.read_timeout = 2s;
    start(limits);
    RawTls conn(port_, good());
    ASSERT_TRUE(conn.handshake_ok());
    const std::string request = "GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(50, 'a');
    const auto first = std::chrono::steady_clock::now();
    std::size_t sent = 0;
    bool closed = false;
    while (sent < request.size() && std::chrono::steady_clock::now() - first < 8s) {
        if (!conn.send(request.substr(sent, 1))) {
            closed = true;
            break;
        }
        ++sent;
        // One byte per second; a per-read timeout of 2 s would never fire.
        for (int i = 0; i < 10 && !closed; ++i) {
            std::this_thread::sleep_for(100ms);
            closed = conn.peer_closed();
        }
        if (closed) break;
    }
    const auto elapsed = std::chrono::steady_clock::now() - first;
    EXPECT_TRUE(closed);
    EXPECT_LT(elapsed, 3500ms);
    EXPECT_GE(elapsed, 1500ms);
    EXPECT_LT(sent, request.size());
    EXPECT_GE(server_->stats().timeouts, 1u);
}

// Waits (bounded) until pred holds.
template <class Pred>
bool within(std::chrono::milliseconds limit, Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

TEST_F(ServerTest, SilentConnectionsDoNotLockOutAuthenticatedClientsWithDefaultLimits) {
    Limits limits;                   // defaults (4096 connections, 256 in their handshake)...
    limits.handshake_timeout = 20s;  // ...but sockets must not outlive the test for long
    start(limits);
    std::vector<std::unique_ptr<RawTls>> clients;
    for (int i = 0; i < 20; ++i) {
        clients.push_back(std::make_unique<RawTls>(port_, good()));
        ASSERT_TRUE(clients.back()->handshake_ok());
    }
    std::vector<int> silent;
    silent.reserve(1000);
    for (int i = 0; i < 1000; ++i) {
        const int fd = testing::tcp_connect(port_);
        ASSERT_GE(fd, 0) << "connect " << i;
        silent.push_back(fd);
    }
    // 256 wait in their handshake; the other 744 are closed at accept.
    ASSERT_TRUE(within(10s, [&] { return server_->stats().handshakes_rejected == 744u; }))
        << server_->stats().handshakes_rejected;
    EXPECT_EQ(server_->stats().handshakes_active, 256u);
    EXPECT_EQ(server_->stats().connections_active, 20u + 256u);
    EXPECT_EQ(server_->stats().connections_rejected, 744u);
    // The authenticated clients are served as before.
    for (auto& c : clients) {
        ASSERT_TRUE(c->send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
        EXPECT_EQ(c->read_response().rfind("HTTP/1.1 200", 0), 0u);
    }
    for (int fd : silent) ::close(fd);
}

TEST_F(ServerTest, HandshakeCapClosesUnauthenticatedConnectionsBeyondIt) {
    Limits limits;
    limits.max_connections = 10;
    limits.max_handshakes = 2;
    start(limits);
    const int a = testing::tcp_connect(port_);
    const int b = testing::tcp_connect(port_);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    ASSERT_TRUE(within(5s, [&] { return server_->stats().handshakes_active == 2u; }));
    const int c = testing::tcp_connect(port_);
    ASSERT_GE(c, 0);
    char byte;
    EXPECT_EQ(::recv(c, &byte, 1, 0), 0);  // closed at accept
    EXPECT_EQ(server_->stats().handshakes_rejected, 1u);
    EXPECT_EQ(server_->stats().connections_rejected, 1u);
    ::close(c);
    // A slot frees when a connection leaves its handshake: a client gets through again.
    ::close(a);
    ASSERT_TRUE(within(5s, [&] { return server_->stats().handshakes_active == 1u; }));
    EXPECT_TRUE(served(good()));
    EXPECT_EQ(server_->stats().handshakes_active, 1u);
    ::close(b);
}

TEST_F(ServerTest, ConnectionCapClosesConnectionsBeyondIt) {
    Limits limits;
    limits.max_connections = 2;
    start(limits);
    RawTls a(port_, good());
    RawTls b(port_, good());
    ASSERT_TRUE(a.handshake_ok());
    ASSERT_TRUE(b.handshake_ok());
    EXPECT_FALSE(served(good()));
    EXPECT_GE(server_->stats().connections_rejected, 1u);
}

TEST_F(ServerTest, IdleTimeoutClosesAKeptAliveConnection) {
    Limits limits;
    limits.idle_timeout = 500ms;
    start(limits);
    RawTls conn(port_, good());
    ASSERT_TRUE(conn.send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(conn.read_response().rfind("HTTP/1.1 200", 0), 0u);
    const auto idle = std::chrono::steady_clock::now();
    while (!conn.peer_closed() && std::chrono::steady_clock::now() - idle < 5s) {
        std::this_thread::sleep_for(10ms);
    }
    const auto closed_after = std::chrono::steady_clock::now() - idle;
    EXPECT_TRUE(conn.peer_closed());
    EXPECT_GE(closed_after, 450ms);  // not before the idle timeout
    EXPECT_LT(closed_after, 3s);
}

TEST_F(ServerTest, HandshakeTimeoutClosesSilentConnections) {
    Limits limits;
    limits.handshake_timeout = 300ms;
    start(limits);
    const int fd = testing::tcp_connect(port_);
    ASSERT_GE(fd, 0);
    char c;
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(::recv(fd, &c, 1, 0), 0);  // closed by the server, not the 5 s recv timeout
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
    ::close(fd);
}

TEST_F(ServerTest, OpsListenerServesPlainHttpOnlyAndApiListenerNoPlainHttp) {
    start();
    const std::uint16_t ops = server_->ops_port();
    ASSERT_NE(ops, 0);
    const std::string health = testing::plain_exchange(
        ops, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(health.rfind("HTTP/1.1 200", 0), 0u) << health;
    EXPECT_NE(health.find("X-Request-Id: "), std::string::npos);
    const std::string other = testing::plain_exchange(
        ops, "GET /v1/keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(other.rfind("HTTP/1.1 404", 0), 0u) << other;

    RawTls tls_on_ops(ops, good());  // a ClientHello is not HTTP
    EXPECT_FALSE(tls_on_ops.handshake_ok());

    const std::string plain_on_api = testing::plain_exchange(
        port_, "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(plain_on_api.find("HTTP/1.1"), std::string::npos);
}

// OpenSSL writes the sockets with write(2): a peer that has reset its connection must cost an
// EPIPE on that connection, not a SIGPIPE that ends the daemon.
TEST_F(ServerTest, StartIgnoresSigpipe) {
    ASSERT_NE(std::signal(SIGPIPE, SIG_DFL), SIG_ERR);
    start();
    struct sigaction now {};
    ASSERT_EQ(::sigaction(SIGPIPE, nullptr, &now), 0);
    EXPECT_EQ(now.sa_handler, SIG_IGN);
}

TEST_F(ServerTest, BadReloadKeepsTheOldContextAndGoodReloadSwapsIt) {
    start();
    const auto garbage = pki_->dir.path() / "garbage.pem";
    test::write_file(garbage, "not a certificate");
    auto bad = server_->reload_tls({garbage, pki_->server.key, pki_->ca->ca_file()});
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, "net.tls_config");
    auto mismatched =
        server_->reload_tls({pki_->server2.cert, pki_->server.key, pki_->ca->ca_file()});
    EXPECT_FALSE(mismatched.ok());
    {
        RawTls conn(port_, good());
        ASSERT_TRUE(conn.handshake_ok());
        EXPECT_EQ(conn.peer_cn(), "localhost");
    }
    EXPECT_TRUE(served(good()));

    ASSERT_TRUE(
        server_->reload_tls({pki_->server2.cert, pki_->server2.key, pki_->ca->ca_file()}).ok());
    RawTls conn(port_, good());
    ASSERT_TRUE(conn.handshake_ok());
    EXPECT_EQ(conn.peer_cn(), "reloaded");
}

TEST_F(ServerTest, GracefulStopLetsRequestsInFlightFinish) {
    start();
    std::promise<core::Result<Response>> result;
    std::thread t([&] {
        auto c = client();
        result.set_value(c.request("GET", "/slow"));
    });
    // The request is in the handler now.
    while (slow_entered_.load() == 0) std::this_thread::sleep_for(5ms);
    const auto t0 = std::chrono::steady_clock::now();
    server_->stop(5s);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
    t.join();
    auto r = result.get_future().get();
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->status, 200u);
    EXPECT_EQ(header(*r, "Connection"), "close");
    server_.reset();
}

TEST(Identity, FromPemMatchesTheCertificate) {
    test::TempDir dir;
    test::TestPki pki(dir.path(), "Licentra Dev CA");
    const auto files = pki.client("c", "officer-a", {"urn:x:1", "https://e.example/a"});
    auto id = identity_from_pem(test::read_file(files.cert));
    ASSERT_TRUE(id.ok()) << id.error().to_string();
    EXPECT_EQ(id->subject_cn, "officer-a");
    EXPECT_EQ(id->issuer_dn, "CN=Licentra Dev CA");
    EXPECT_EQ(id->san_uris, (std::vector<std::string>{"urn:x:1", "https://e.example/a"}));
    EXPECT_TRUE(id->san_dns.empty());
    EXPECT_FALSE(identity_from_pem("junk").ok());
}

TEST(ClientUrl, ParsesHostsPortsAndRejectsOthers) {
    auto a = parse_server_url("https://127.0.0.1:8443");
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->host, "127.0.0.1");
    EXPECT_EQ(a->port, 8443);
    EXPECT_EQ(parse_server_url("localhost").value().port, 443);
    EXPECT_EQ(parse_server_url("https://[::1]:9/").value().host, "::1");
    for (const char* bad : {"http://x:1", "https://x:0", "https://x:70000", "https://x/path",
                            "https://u@x", "https://:1", "https://[::1"}) {
        EXPECT_FALSE(parse_server_url(bad).ok()) << bad;
    }
}

}  // namespace
}  // namespace licentra::net
