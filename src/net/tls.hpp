// TLS contexts: the API listener's server context (TLS 1.3 only, client certificate required
// and verified against the configured CA bundle only, reloadable) and the client context.
#pragma once

#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>

#include "core/result.hpp"

namespace licentra::net {

struct ServerTlsFiles {
    std::filesystem::path cert_chain;   // PEM: server certificate first, then intermediates
    std::filesystem::path private_key;  // PEM private key of the server certificate
    // PEM bundle: the only trust anchors for client certs. Empty: no client certificate is
    // asked for (the public JWKS listener: server authentication only).
    std::filesystem::path client_ca;
};

struct ClientTlsFiles {
    std::filesystem::path ca;           // PEM bundle: trust anchors for the server certificate
    std::filesystem::path cert_chain;   // PEM client certificate (+ intermediates)
    std::filesystem::path private_key;  // PEM client private key
};

// Builds a server context: TLS 1.3 only (RFC 8446), SSL_VERIFY_PEER |
// SSL_VERIFY_FAIL_IF_NO_PEER_CERT, trust = client_ca only (never the system default paths),
// no session resumption (every connection verifies a certificate), the CA names sent in the
// CertificateRequest. Errors: usage (net.tls_config) naming the file that failed.
[[nodiscard]] core::Result<std::shared_ptr<boost::asio::ssl::context>> make_server_context(
    const ServerTlsFiles& files);

// Builds a client context: TLS 1.3 only, server verified against `ca` only, client
// certificate and key loaded. Errors: usage (net.tls_config).
[[nodiscard]] core::Result<std::shared_ptr<boost::asio::ssl::context>> make_client_context(
    const ClientTlsFiles& files);

// The earliest notAfter (Unix seconds) of the PEM certificates in `file`: for a chain or a CA
// bundle, the time the first of them expires. Errors: usage (net.tls_config) when the file
// cannot be read or holds no certificate.
[[nodiscard]] core::Result<std::int64_t> earliest_certificate_expiry(
    const std::filesystem::path& file);

// The API listener's current server context. New connections take current(); reload() builds
// a new context and swaps it in atomically, so connections already open keep theirs. A failed
// reload leaves the current context in place and returns the error. Thread-safe.
class ReloadableServerContext {
  public:
    [[nodiscard]] static core::Result<std::shared_ptr<ReloadableServerContext>> create(
        const ServerTlsFiles& files);

    [[nodiscard]] core::Status reload(const ServerTlsFiles& files);
    [[nodiscard]] std::shared_ptr<boost::asio::ssl::context> current() const;
    [[nodiscard]] std::uint64_t generation() const noexcept { return generation_.load(); }

  private:
    explicit ReloadableServerContext(std::shared_ptr<boost::asio::ssl::context> ctx)
        : ctx_(std::move(ctx)) {}
    mutable std::mutex mutex_;
    std::shared_ptr<boost::asio::ssl::context> ctx_;
    std::atomic<std::uint64_t> generation_{1};
};

}  // namespace licentra::net
