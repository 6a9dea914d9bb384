#include "net/client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>
#include <optional>

namespace licentra::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

core::Result<Endpoint> parse_server_url(std::string_view url) {
    auto bad = [&](std::string why) {
        return core::make_error(core::ErrorKind::usage, "net.bad_url",
                                "server '" + std::string(url) + "': " + why);
    };
    std::string_view rest = url;
    if (const auto p = rest.find("://"); p != std::string_view::npos) {
        if (rest.substr(0, p) != "https") return bad("only https:// is supported");
        rest.remove_prefix(p + 3);
    }
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.find_first_of("/?#@") != std::string_view::npos) {
        return bad("expected host[:port] without path or userinfo");
    }
    Endpoint ep;
    std::string_view port_text;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) return bad("unterminated IPv6 address");
        ep.host = std::string(rest.substr(1, close - 1));
        rest.remove_prefix(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return bad("garbage after IPv6 address");
            port_text = rest.substr(1);
        }
    } else {
        const auto colon = rest.rfind(':');
        ep.host = std::string(rest.substr(0, colon));
        if (colon != std::string_view::npos) port_text = rest.substr(colon + 1);
    }
    if (ep.host.empty()) return bad("missing host");
    if (!port_text.empty()) {
        unsigned value = 0;
        const auto [ptr, ec] =
            std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
        if (ec != std::errc{} || ptr != port_text.data() + port_text.size() || value == 0 ||
            value > 65535) {
            return bad("invalid port");
        }
        ep.port = static_cast<std::uint16_t>(value);
    }
    return ep;
}

struct Client::Impl {
    ClientOptions options;
    std::shared_ptr<ssl::context> ctx;
    asio::io_context ioc{1};
    std::optional<beast::ssl_stream<beast::tcp_stream>> stream;
    beast::flat_buffer buffer;
    std::size_t requests_on_connection = 0;

    // Runs one asynchronous operation to completion on the private io_context, so the
    // tcp_stream's deadline applies (synchronous Beast calls ignore timeouts).
    template <class Start>
    beast::error_code run(Start&& start) {
        beast::error_code result = asio::error::would_block;
        start([&result](beast::error_code ec, auto&&...) { result = ec; });
        ioc.restart();
        ioc.run();
        return result;
    }

    core::Error io_error(const char* code, const char* what, const beast::error_code& ec) {
        if (ec == beast::error::timeout) {
            return core::make_error(core::ErrorKind::unavailable, "net.timeout",
                                    std::string(what) + ": timed out");
        }
        return core::make_error(core::ErrorKind::unavailable, code,
                                std::string(what) + ": " + ec.message());
    }

    core::Status connect() {
        drop();
        tcp::resolver resolver(ioc);
        tcp::resolver::results_type endpoints;
        beast::error_code ec = run([&](auto handler) {
            resolver.async_resolve(
                options.server.host, std::to_string(options.server.port),
                [&endpoints, handler](beast::error_code e, tcp::resolver::results_type r) mutable {
                    endpoints = std::move(r);
                    handler(e);
                });
        });
        if (ec) return io_error("net.connect", "cannot resolve server", ec);

        stream.emplace(ioc, *ctx);
        SSL* ssl_handle = stream->native_handle();
        const std::string& name =
            options.server_name.empty() ? options.server.host : options.server_name;
        beast::error_code addr_ec;
        asio::ip::make_address(name, addr_ec);
        if (addr_ec) {
            // RFC 6066 §3: SNI carries DNS names only.
            SSL_ctrl(ssl_handle, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(name.c_str()));  // SSL_set_tlsext_host_name
            SSL_set1_host(ssl_handle, name.c_str());
        } else {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), name.c_str());
        }

        auto& lowest = beast::get_lowest_layer(*stream);
        lowest.expires_after(options.timeout);
        ec = run([&](auto handler) { lowest.async_connect(endpoints, handler); });
        if (ec) {
            drop();
            return io_error("net.connect", "cannot connect to server", ec);
        }
        lowest.socket().set_option(tcp::no_delay(true), ec);
        lowest.expires_after(options.timeout);
        ec = run([&](auto handler) { stream->async_handshake(ssl::stream_base::client, handler); });
        if (ec) {
            drop();
            return io_error("net.tls_handshake", "TLS handshake failed", ec);
        }
        requests_on_connection = 0;
        return core::ok_status();
    }

    void drop() {
        if (stream) {
            beast::error_code ec;
            beast::get_lowest_layer(*stream).socket().close(ec);
            stream.reset();
        }
        buffer.clear();
    }

    void close() {
        if (!stream) return;
        auto& lowest = beast::get_lowest_layer(*stream);
        lowest.expires_after(std::chrono::seconds(2));
        (void)run([&](auto handler) { stream->async_shutdown(handler); });
        drop();
    }

    enum class Outcome { ok, retry, fail };

    Outcome attempt(const http::request<http::string_body>& req, Response& out,
                    core::Error& error) {
        auto& lowest = beast::get_lowest_layer(*stream);
        lowest.expires_after(options.timeout);
        const bool reused = requests_on_connection > 0;
        beast::error_code ec = run([&](auto handler) { http::async_write(*stream, req, handler); });
        if (ec) {
            error = io_error("net.io", "cannot send request", ec);
            return reused ? Outcome::retry : Outcome::fail;
        }
        http::response_parser<http::string_body> parser;
        parser.body_limit(options.max_response_body);
        parser.header_limit(64 * 1024);
        ec = run([&](auto handler) { http::async_read(*stream, buffer, parser, handler); });
        if (ec) {
            const bool nothing_received = !parser.got_some();
            const bool closed = ec == http::error::end_of_stream ||
                                ec == asio::error::connection_reset ||
                                ec == asio::ssl::error::stream_truncated || ec == asio::error::eof;
            if (reused && nothing_received && closed) {
                error = io_error("net.io", "connection closed by server", ec);
                return Outcome::retry;
            }
            if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
                ec != http::error::end_of_stream && ec != http::error::partial_message) {
                error = core::make_error(core::ErrorKind::usage, "net.bad_response",
                                         "malformed response: " + ec.message());
            } else {
                error = io_error("net.io", "cannot read response", ec);
            }
            return Outcome::fail;
        }
        ++requests_on_connection;
        auto res = parser.release();
        out.status = res.result_int();
        for (const auto& field : res) {
            out.headers.push_back({std::string(field.name_string()), std::string(field.value())});
        }
        if (auto it = res.find(http::field::content_type); it != res.end()) {
            out.content_type = std::string(it->value());
        }
        out.body = std::move(res.body());
        if (!res.keep_alive()) close();
        return Outcome::ok;
    }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() {
    if (impl_) impl_->drop();
}

core::Result<Client> Client::create(ClientOptions options) {
    auto ctx = make_client_context(options.tls);
    if (!ctx) return std::move(ctx).error();
    auto impl = std::make_unique<Impl>();
    impl->options = std::move(options);
    impl->ctx = std::move(ctx).value();
    return Client(std::move(impl));
}

core::Result<Response> Client::request(std::string_view method, std::string_view target,
                                       std::string_view body, std::string_view content_type) {
    try {
        http::request<http::string_body> req;
        const http::verb verb = http::string_to_verb(method);
        if (verb == http::verb::unknown) {
            req.method_string(method);
        } else {
            req.method(verb);
        }
        req.target(target);
        req.version(11);
        req.set(http::field::host,
                impl_->options.server.host + ":" + std::to_string(impl_->options.server.port));
        req.set(http::field::user_agent, "licentra");
        if (!content_type.empty()) req.set(http::field::content_type, content_type);
        req.body() = std::string(body);
        req.keep_alive(true);
        req.prepare_payload();

        for (int round = 0; round < 2; ++round) {
            if (!impl_->stream) {
                if (auto s = impl_->connect(); !s) return std::move(s).error();
            }
            Response out;
            core::Error error;
            switch (impl_->attempt(req, out, error)) {
                case Impl::Outcome::ok:
                    return out;
                case Impl::Outcome::retry:
                    impl_->drop();
                    if (round == 0) continue;
                    return error;
                case Impl::Outcome::fail:
                default:
                    impl_->drop();
                    return error;
            }
        }
        return core::make_error(core::ErrorKind::unavailable, "net.io", "request failed");
    } catch (const std::exception& e) {
        impl_->drop();
        return core::make_error(core::ErrorKind::internal, "net.io", e.what());
    }
}

void Client::close() { impl_->close(); }

bool Client::connected() const noexcept { return impl_ && impl_->stream.has_value(); }

}  // namespace licentra::net
