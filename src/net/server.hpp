// The HTTP server: an mTLS API listener (TLS 1.3, client certificate required) and an optional
// plain-HTTP operations listener, both feeding a Handler, run on W io_context threads.
//
// Model (Boost.Beast 1.74 examples): one session object per connection, do_x/on_x pairs, a
// strand per connection, expires_after before every handshake/read/write, parser
// header_limit/body_limit, one request in flight per connection (the next request is not read
// until the response is written), explicit TLS shutdown.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/result.hpp"
#include "net/http.hpp"
#include "net/log.hpp"
#include "net/tls.hpp"

namespace boost::asio {
class io_context;
}

namespace licentra::net {

struct ListenAddress {
    std::string host = "127.0.0.1";  // numeric IPv4/IPv6 address
    std::uint16_t port = 0;          // 0 = ephemeral (tests); see Server::api_port()
};

struct ServerOptions {
    ListenAddress api{"127.0.0.1", 8443};
    ServerTlsFiles tls;
    // The operations listener (plain HTTP, no identity); nullopt = none.
    std::optional<ListenAddress> ops = ListenAddress{"127.0.0.1", 9090};
    Limits limits;      // API listener
    Limits ops_limits;  // operations listener
    // The public listener (TLS with server authentication only, no client certificate; the
    // daemon serves only the JWKS there); nullopt = none. Same certificate as the API.
    std::optional<ListenAddress> public_listener;
    Limits public_limits;
    unsigned io_threads = 2;
    LogSink log = log_line;  // operational log (handshake failures are rate-limited)
    std::chrono::milliseconds handshake_log_interval{1000};
    // Called once per response, on the connection's strand: must not block.
    std::function<void(const Exchange&)> on_exchange;
};

// Counters for /metrics. All monotonic except the *_active gauges.
struct ServerStats {
    std::uint64_t connections_accepted = 0;
    std::uint64_t connections_rejected = 0;  // over max_connections or max_handshakes
    std::uint64_t handshakes_rejected = 0;   // of those, over max_handshakes alone
    std::uint64_t handshakes_active = 0;     // API connections still in their handshake
    std::uint64_t connections_active = 0;    // API listener, including pre-handshake
    std::uint64_t ops_connections_active = 0;
    std::uint64_t public_connections_active = 0;
    std::uint64_t handshake_failures = 0;
    std::uint64_t requests = 0;       // responses written, both listeners
    std::uint64_t bad_requests = 0;   // malformed HTTP, header or body over the limit
    std::uint64_t timeouts = 0;       // handshake, idle or read deadline hit
    std::uint64_t accept_errors = 0;  // e.g. EMFILE
};

// Raises RLIMIT_NOFILE's soft limit to the hard limit. Returns the new soft limit.
std::uint64_t raise_fd_limit();

class Server {
  public:
    // Loads the TLS contexts, opens and binds the listeners (so a port in use is reported
    // here), raises RLIMIT_NOFILE. Does not start accepting. Errors: usage (net.tls_config,
    // net.config), unavailable (net.listen) for bind/listen failures.
    [[nodiscard]] static core::Result<std::unique_ptr<Server>> create(
        ServerOptions options, std::shared_ptr<Handler> api_handler,
        std::shared_ptr<Handler> ops_handler, std::shared_ptr<Handler> public_handler = nullptr);

    ~Server();  // stop(0) if still running
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Starts accepting and runs io_threads threads. Call once.
    [[nodiscard]] core::Status start();

    // Graceful stop: stops accepting, closes idle connections (TLS close_notify), lets
    // requests in flight finish and their responses be written (with Connection: close) until
    // `drain` has elapsed, then closes whatever is left and joins the io threads. Blocks.
    // Idempotent. Must not be called from an io_context thread or a Handler.
    void stop(std::chrono::milliseconds drain = std::chrono::seconds(10));

    // SIGHUP: builds a new server context from `files` and uses it for new connections. A bad
    // reload keeps the old context and returns the error. Thread-safe.
    [[nodiscard]] core::Status reload_tls(const ServerTlsFiles& files);

    [[nodiscard]] std::uint16_t api_port() const noexcept;
    [[nodiscard]] std::uint16_t ops_port() const noexcept;     // 0 without an ops listener
    [[nodiscard]] std::uint16_t public_port() const noexcept;  // 0 without a public listener
    [[nodiscard]] ServerStats stats() const noexcept;
    [[nodiscard]] std::uint64_t handshake_failures() const noexcept;

    // The io_context the sessions run on (e.g. to attach timers). Valid for the Server's life.
    [[nodiscard]] boost::asio::io_context& io_context() noexcept;

    struct State;  // internal, shared with sessions

  private:
    Server() = default;
    std::shared_ptr<State> state_;
    std::vector<std::thread> threads_;
    bool started_ = false;
    bool stopped_ = false;
};

}  // namespace licentra::net
