// Blocking test clients built directly on sockets and the OpenSSL API, independent of net's own
// client, for handshake and protocol-abuse tests.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "support/tls_certs.hpp"

namespace licentra::net::testing {

int tcp_connect(std::uint16_t port);  // -1 on failure; 5 s receive timeout set

struct RawTlsOptions {
    std::filesystem::path ca;
    std::optional<test::CertFiles> client;
    int min_version = TLS1_2_VERSION;
    int max_version = TLS1_3_VERSION;
};

// One TLS connection. handshake_ok() is the client's view: with TLS 1.3 the server may still
// reject the client certificate after the client's handshake completes, which shows up as a
// failed read.
class RawTls {
  public:
    RawTls(std::uint16_t port, const RawTlsOptions& options);
    ~RawTls();
    RawTls(const RawTls&) = delete;
    RawTls& operator=(const RawTls&) = delete;

    [[nodiscard]] bool handshake_ok() const { return handshake_ok_; }
    bool send(std::string_view bytes);
    // Sends close_notify (without waiting for the peer's).
    bool close_notify();
    // Reads until the peer closes or fails (or the 5 s receive timeout), returns what arrived.
    std::string read_all();
    // Reads one response with Content-Length (keep-alive).
    std::string read_response();
    // True if the peer has closed the connection (or sent an alert), without blocking.
    bool peer_closed();
    [[nodiscard]] std::string peer_cn() const;
    [[nodiscard]] std::string error() const { return error_; }

  private:
    int fd_ = -1;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    bool handshake_ok_ = false;
    std::string error_;
    std::string pending_;
};

// Full exchange over mTLS: sends `request`, returns everything the server sent before closing
// (empty if the connection was refused).
std::string tls_exchange(std::uint16_t port, const RawTlsOptions& options,
                         std::string_view request);

// Same over plain TCP.
std::string plain_exchange(std::uint16_t port, std::string_view request);

}  // namespace licentra::net::testing
