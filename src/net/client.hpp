// A synchronous HTTPS client with mutual TLS (TLS 1.3, client certificate), keep-alive and
// timeouts, for the `licentra` CLI and tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "net/http.hpp"
#include "net/tls.hpp"

namespace licentra::net {

struct Endpoint {
    std::string host;  // DNS name or numeric address (IPv6 without brackets)
    std::uint16_t port = 443;
};

// Parses "https://host[:port][/]" or "host[:port]" (IPv6 as "[::1]:8443"). Errors: usage
// (net.bad_url) for another scheme, a path, userinfo, or a bad port.
[[nodiscard]] core::Result<Endpoint> parse_server_url(std::string_view url);

struct ClientOptions {
    Endpoint server{"127.0.0.1", 8443};
    ClientTlsFiles tls;
    // The name the server certificate must carry (SAN DNS or IP); defaults to server.host.
    std::string server_name;
    // Bound on each connect+handshake and on each request (write + read of the response).
    std::chrono::milliseconds timeout{30'000};
    std::size_t max_response_body = 16 * 1024 * 1024;
};

// One keep-alive connection, opened on first use and reopened when the server has closed it.
// Not thread-safe: use one Client per thread.
class Client {
  public:
    // Loads and checks the TLS files; does not connect. Errors: usage (net.tls_config).
    [[nodiscard]] static core::Result<Client> create(ClientOptions options);

    Client(Client&&) noexcept;
    Client& operator=(Client&&) noexcept;
    ~Client();

    // Sends one request and reads the response (any status is a successful Result; inspect
    // Response::status). The response's headers include X-Request-Id. If a reused
    // connection turns out to be closed by the server before any response byte arrives, the
    // request is sent once more on a fresh connection (the server never saw it).
    // Errors: unavailable (net.connect, net.tls_handshake, net.io, net.timeout),
    // usage (net.bad_response) for a malformed or oversized response.
    [[nodiscard]] core::Result<Response> request(std::string_view method, std::string_view target,
                                                 std::string_view body = {},
                                                 std::string_view content_type = {});

    // Sends close_notify and closes the connection if open.
    void close();

    // True while a connection is open (for tests of keep-alive).
    [[nodiscard]] bool connected() const noexcept;

  private:
    struct Impl;
    explicit Client(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace licentra::net
