#include "tls_test_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

namespace licentra::net::testing {

int tcp_connect(std::uint16_t port) {
    // A peer closing mid-write must fail the write, not kill the test process.
    static const bool sigpipe_ignored = [] { return std::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
    (void)sigpipe_ignored;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

RawTls::RawTls(std::uint16_t port, const RawTlsOptions& options) {
    fd_ = tcp_connect(port);
    if (fd_ < 0) {
        error_ = "connect failed";
        return;
    }
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx_, options.min_version);
    SSL_CTX_set_max_proto_version(ctx_, options.max_version);
    SSL_CTX_load_verify_locations(ctx_, options.ca.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (options.client) {
        SSL_CTX_use_certificate_chain_file(ctx_, options.client->cert.c_str());
        SSL_CTX_use_PrivateKey_file(ctx_, options.client->key.c_str(), SSL_FILETYPE_PEM);
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) == 1) {
        handshake_ok_ = true;
    } else {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
        error_ = buf;
    }
    ERR_clear_error();
}

RawTls::~RawTls() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
}

bool RawTls::send(std::string_view bytes) {
    if (!handshake_ok_) return false;
    const int n = SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
    ERR_clear_error();
    return n == static_cast<int>(bytes.size());
}

bool RawTls::close_notify() {
    if (!handshake_ok_) return false;
    const int n = SSL_shutdown(ssl_);
    ERR_clear_error();
    return n >= 0;
}

std::string RawTls::read_all() {
    std::string out = std::move(pending_);
    pending_.clear();
    if (!handshake_ok_) return out;
    char buf[4096];
    for (;;) {
        const int n = SSL_read(ssl_, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ERR_clear_error();
    return out;
}

std::string RawTls::read_response() {
    std::string data = std::move(pending_);
    pending_.clear();
    char buf[4096];
    for (;;) {
        const auto end = data.find("\r\n\r\n");
        if (end != std::string::npos) {
            std::size_t length = 0;
            std::string lower = data.substr(0, end);
            for (auto& c : lower) c = static_cast<char>(std::tolower(c));
            const auto cl = lower.find("content-length:");
            if (cl != std::string::npos) length = std::stoul(lower.substr(cl + 15));
            if (data.size() >= end + 4 + length) {
                pending_ = data.substr(end + 4 + length);
                return data.substr(0, end + 4 + length);
            }
        }
        if (!handshake_ok_) return data;
        const int n = SSL_read(ssl_, buf, sizeof buf);
        if (n <= 0) {
            ERR_clear_error();
            return data;
        }
        data.append(buf, static_cast<std::size_t>(n));
    }
}

bool RawTls::peer_closed() {
    if (!handshake_ok_) return true;
    pollfd p{fd_, POLLIN, 0};
    if (SSL_pending(ssl_) == 0 && ::poll(&p, 1, 0) == 0) return false;
    char c;
    const int n = SSL_read(ssl_, &c, 1);
    ERR_clear_error();
    if (n == 1) {
        pending_.push_back(c);
        return false;
    }
    const int err = SSL_get_error(ssl_, n);
    return err != SSL_ERROR_WANT_READ;
}

std::string RawTls::peer_cn() const {
    X509* cert = SSL_get0_peer_certificate(ssl_);
    if (!cert) return {};
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    return buf;
}

std::string tls_exchange(std::uint16_t port, const RawTlsOptions& options,
                         std::string_view request) {
    RawTls conn(port, options);
    if (!conn.handshake_ok()) return {};
    conn.send(request);
    return conn.read_all();
}

std::string plain_exchange(std::uint16_t port, std::string_view request) {
    const int fd = tcp_connect(port);
    if (fd < 0) return {};
    std::size_t off = 0;
    while (off < request.size()) {
        const ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

}  // namespace licentra::net::testing
