#include "net/server.hpp"

#include <openssl/ssl.h>
#include <sys/resource.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/thread_name.hpp"
#include "net/detail/beast_http.hpp"
#include "net/identity.hpp"
#include "net/tls_stream.hpp"

namespace licentra::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

std::uint64_t raise_fd_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit wanted = rl;
        wanted.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &wanted) == 0) rl = wanted;
    }
    return static_cast<std::uint64_t>(rl.rlim_cur);
}

namespace impl {

class SessionBase;
class Listener;

class SessionBase {
  public:
    virtual ~SessionBase() = default;
    // Both post onto the session's strand; callable from any thread.
    virtual void request_shutdown() = 0;
    virtual void force_close() = 0;
};

std::string endpoint_text(const tcp::socket& socket) {
    beast::error_code ec;
    const auto ep = socket.remote_endpoint(ec);
    if (ec) return "unknown";
    return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace impl

struct Server::State {
    explicit State(ServerOptions opts)
        : options(std::move(opts)),
          ioc(static_cast<int>(options.io_threads == 0 ? 1 : options.io_threads)),
          handshake_log(options.log, options.handshake_log_interval),
          accept_log(options.log, std::chrono::milliseconds(1000)) {}

    ServerOptions options;
    asio::io_context ioc;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::shared_ptr<Handler> api_handler;
    std::shared_ptr<Handler> ops_handler;
    std::shared_ptr<Handler> public_handler;
    std::shared_ptr<ReloadableServerContext> tls;
    std::shared_ptr<ReloadableServerContext> public_tls;  // no client certificate
    RateLimitedLog handshake_log;
    RateLimitedLog accept_log;

    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> next_connection_id{1};
    std::atomic<std::uint64_t> accepted{0}, rejected{0}, active_api{0}, active_ops{0},
        handshake_failures{0}, requests{0}, bad_requests{0}, timeouts{0}, accept_errors{0},
        handshaking{0}, rejected_handshakes{0}, active_public{0};

    std::shared_ptr<impl::Listener> api_listener;
    std::shared_ptr<impl::Listener> ops_listener;
    std::shared_ptr<impl::Listener> public_listener;

    std::mutex sessions_mutex;
    std::unordered_map<impl::SessionBase*, std::weak_ptr<impl::SessionBase>> sessions;

    void add(impl::SessionBase* s, std::weak_ptr<impl::SessionBase> w) {
        std::lock_guard lock(sessions_mutex);
        sessions.emplace(s, std::move(w));
    }
    void remove(impl::SessionBase* s) {
        std::lock_guard lock(sessions_mutex);
        sessions.erase(s);
    }
    std::vector<std::shared_ptr<impl::SessionBase>> snapshot() {
        std::vector<std::shared_ptr<impl::SessionBase>> out;
        std::lock_guard lock(sessions_mutex);
        out.reserve(sessions.size());
        for (auto& [p, w] : sessions) {
            if (auto s = w.lock()) out.push_back(std::move(s));
        }
        return out;
    }
};

namespace impl {

using State = Server::State;

// Holds one slot of a listener's connection count for the session's lifetime.
class ConnectionSlot {
  public:
    explicit ConnectionSlot(std::atomic<std::uint64_t>& counter) : counter_(counter) {
        counter_.fetch_add(1);
    }
    ~ConnectionSlot() { counter_.fetch_sub(1); }
    ConnectionSlot(const ConnectionSlot&) = delete;
    ConnectionSlot& operator=(const ConnectionSlot&) = delete;

  private:
    std::atomic<std::uint64_t>& counter_;
};

// The HTTP half of a session, shared by the TLS and plain sessions (CRTP, as in Beast's
// advanced_server_flex example). Derived provides stream(), lowest(), do_close(), self().
inline constexpr std::size_t kFirstReadSize = 4096;

template <class Derived>
class HttpSession : public SessionBase {
  public:
    HttpSession(std::shared_ptr<State> state, asio::any_io_executor ex, Handler& handler,
                const Limits& limits, std::atomic<std::uint64_t>& active, std::string remote)
        : state_(std::move(state)),
          ex_(std::move(ex)),
          handler_(handler),
          limits_(limits),
          slot_(active),
          remote_(std::move(remote)),
          connection_id_(state_->next_connection_id.fetch_add(1)) {}

    ~HttpSession() override { state_->remove(this); }

    void request_shutdown() override {
        asio::post(ex_, [self = derived().shared_from_this()] { self->on_shutdown_requested(); });
    }
    void force_close() override {
        asio::post(ex_, [self = derived().shared_from_this()] {
            self->phase_ = Phase::closed;
            self->derived().close_socket();
        });
    }

  protected:
    enum class Phase { handshake, idle, reading, handling, writing, closing, closed };

    Derived& derived() { return static_cast<Derived&>(*this); }

    void on_shutdown_requested() {
        stop_requested_ = true;
        switch (phase_) {
            case Phase::handshake:
                derived().close_socket();
                break;
            case Phase::idle:
                // Between requests: cancel the read; on_read then closes with close_notify.
                derived().cancel_io();
                break;
            case Phase::reading:
            case Phase::handling:
            case Phase::writing:
                // Finish this request; its response carries Connection: close.
                break;
            case Phase::closing:
            case Phase::closed:
            default:
                break;
        }
    }

    void do_read() {
        if (stop_requested_) {
            derived().do_close();
            return;
        }
        // Waiting for the next request is governed by the idle timeout; once bytes arrive the
        // whole rest of the request must arrive within read_timeout (on_first_bytes).
        if (buffer_.size() > 0) {
            // Bytes of the next request are already buffered (pipelined): the read deadline
            // starts now.
            on_first_bytes({}, 0);
            return;
        }
        // An idle connection keeps no read buffer and no parser: both are made again when the
        // next request's first bytes arrive (most keep-alive connections are idle most of the
        // time, and a server holds many of them).
        buffer_.shrink_to_fit();
        phase_ = Phase::idle;
        derived().wait_idle();
    }

    // Reads the first bytes of the next request, under the idle timeout. This is a raw stream
    // read, not http::async_read_some, because the HTTP parser consumes nothing until a whole
    // header has arrived and a trickled header must not count as idle.
    void read_first_bytes(std::chrono::steady_clock::duration timeout) {
        derived().lowest().expires_after(timeout);
        derived().stream().async_read_some(
            buffer_.prepare(kFirstReadSize),
            beast::bind_front_handler(&HttpSession::on_first_bytes, derived().shared_from_this()));
    }

    void on_first_bytes(beast::error_code ec, std::size_t bytes) {
        if (ec) {
            on_read(ec == asio::error::eof || ec == asio::ssl::error::stream_truncated
                        ? beast::error_code(http::error::end_of_stream)
                        : ec,
                    0);
            return;
        }
        buffer_.commit(bytes);
        parser_.emplace();
        detail::configure_parser(*parser_, limits_);
        phase_ = Phase::reading;
        // One deadline for the whole request, started at its first bytes: basic_stream keeps
        // the expiry across every read_some below, so trickling bytes cannot extend it.
        derived().lowest().expires_after(limits_.read_timeout);
        read_header_section();
    }

    // RFC 9112 §5.2: a server must refuse a request with obsolete line folding (a field line
    // continued on the next line) or replace each fold by a space; Beast 1.74 replaces it, which
    // hides it from every later check. So the raw header section is read up to its empty line
    // (or the header limit) before the parser sees it, and a fold in it is refused with 400.
    void read_header_section() {
        const auto data = buffer_.data();
        const std::string_view raw(static_cast<const char*>(data.data()), data.size());
        if (has_obsolete_line_folding(raw)) {
            refuse_read(ProblemKind::bad_request,
                        "obsolete line folding (a header field continued on the next line) is "
                        "not accepted (RFC 9112 section 5.2)");
            return;
        }
        if (raw.find("\r\n\r\n") != std::string_view::npos || raw.size() >= limits_.header_limit) {
            // The parser reads the rest (and answers 431 past the header limit).
            http::async_read(
                derived().stream(), buffer_, *parser_,
                beast::bind_front_handler(&HttpSession::on_read, derived().shared_from_this()));
            return;
        }
        derived().stream().async_read_some(
            buffer_.prepare(kFirstReadSize),
            [self = derived().shared_from_this()](beast::error_code ec, std::size_t bytes) {
                if (ec) {
                    self->on_read(ec == asio::error::eof || ec == asio::ssl::error::stream_truncated
                                      ? beast::error_code(http::error::partial_message)
                                      : ec,
                                  0);
                    return;
                }
                self->buffer_.commit(bytes);
                self->read_header_section();
            });
    }

    // Answers a request that could not be read with a problem and closes the connection.
    void refuse_read(ProblemKind kind, const std::string& detail) {
        state_->bad_requests.fetch_add(1);
        read_at_ = std::chrono::steady_clock::now();
        method_.clear();
        request_id_ = new_request_id();
        keep_alive_ = false;
        version_ = 11;
        parser_.reset();
        send(problem_response(kind, detail, request_id_));
    }

    void on_read(beast::error_code ec, std::size_t) {
        if (ec == beast::error::timeout) {
            // basic_stream has closed the socket; nothing can be sent.
            state_->timeouts.fetch_add(1);
            phase_ = Phase::closed;
            return;
        }
        if (ec) {
            if (const auto kind = detail::problem_for_read_error(ec); kind && !stop_requested_) {
                std::string detail = "the request could not be read: " + ec.message();
                if (*kind == ProblemKind::header_too_large) {
                    detail = "request header fields exceed " +
                             std::to_string(limits_.header_limit) + " bytes";
                } else if (*kind == ProblemKind::payload_too_large) {
                    detail =
                        "request body exceeds " + std::to_string(limits_.body_limit) + " bytes";
                }
                refuse_read(*kind, detail);
                return;
            }
            // End of stream, reset, cancelled by shutdown: close quietly.
            derived().do_close();
            return;
        }

        read_at_ = std::chrono::steady_clock::now();
        auto message = parser_->release();
        parser_.reset();
        method_ = std::string(message.method_string());
        version_ = message.version();
        keep_alive_ = message.keep_alive();
        ++served_;
        if (limits_.max_requests_per_connection != 0 &&
            served_ >= limits_.max_requests_per_connection) {
            keep_alive_ = false;
        }
        Request request = detail::to_request(std::move(message));
        request.identity = identity_;
        request.authenticated = authenticated_;
        request_id_ = new_request_id();
        request.request_id = request_id_;
        request.remote_address = remote_;
        request.connection_id = connection_id_;

        phase_ = Phase::handling;
        derived().lowest().expires_never();
        auto completion = std::make_shared<Completion>(derived().shared_from_this());
        try {
            handler_.handle(std::move(request),
                            [completion](Response r) { completion->complete(std::move(r)); });
        } catch (const std::exception& e) {
            completion->complete(
                problem_response(ProblemKind::internal, "the request handler failed", request_id_));
        } catch (...) {
            completion->complete(
                problem_response(ProblemKind::internal, "the request handler failed", request_id_));
        }
    }

    // The handler's `done`: callable once from any thread; posts back onto the strand.
    struct Completion {
        explicit Completion(std::shared_ptr<Derived> s) : session(std::move(s)) {}
        ~Completion() {
            if (!called.load()) {
                auto s = std::move(session);
                asio::post(s->ex_, [s] {
                    s->on_handler_done(problem_response(ProblemKind::internal,
                                                        "the request handler did not answer",
                                                        s->request_id_));
                });
            }
        }
        void complete(Response r) {
            if (called.exchange(true)) return;
            asio::post(session->ex_, [s = session, r = std::move(r)]() mutable {
                s->on_handler_done(std::move(r));
            });
        }
        std::shared_ptr<Derived> session;
        std::atomic<bool> called{false};
    };

    void on_handler_done(Response response) {
        if (phase_ != Phase::handling) return;  // force-closed meanwhile
        send(std::move(response));
    }

    void send(Response response) {
        if (state_->options.on_exchange) {
            Exchange x;
            x.listener = &handler_ == state_->api_handler.get()   ? "api"
                         : &handler_ == state_->ops_handler.get() ? "operations"
                                                                  : "public";
            x.method = method_;
            x.route = response.route;
            x.status = response.status;
            x.duration = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - read_at_);
            x.request_id = request_id_;
            x.principal = response.principal;
            x.key = response.key;
            x.kid = response.kid;
            x.remote = remote_;
            state_->options.on_exchange(x);
        }
        const bool keep_alive = keep_alive_ && !stop_requested_ && !state_->stopping.load();
        response_ = std::make_shared<detail::BeastResponse>(
            detail::to_beast_response(std::move(response), request_id_, keep_alive, version_));
        phase_ = Phase::writing;
        derived().lowest().expires_after(limits_.write_timeout);
        http::async_write(
            derived().stream(), *response_,
            beast::bind_front_handler(&HttpSession::on_write, derived().shared_from_this(),
                                      response_->need_eof()));
    }

    void on_write(bool close, beast::error_code ec, std::size_t) {
        response_.reset();
        if (ec) {
            if (ec == beast::error::timeout) state_->timeouts.fetch_add(1);
            phase_ = Phase::closed;
            derived().close_socket();
            return;
        }
        state_->requests.fetch_add(1);
        if (close) {
            derived().do_close();
            return;
        }
        do_read();
    }

    std::shared_ptr<State> state_;
    asio::any_io_executor ex_;
    Handler& handler_;
    const Limits& limits_;
    ConnectionSlot slot_;
    std::string remote_;
    std::uint64_t connection_id_;
    core::ClientIdentity identity_;
    bool authenticated_ = false;

    beast::flat_buffer buffer_;
    std::optional<detail::RequestParser> parser_;
    std::shared_ptr<detail::BeastResponse> response_;
    std::string request_id_;
    std::string method_;
    std::chrono::steady_clock::time_point read_at_{};
    unsigned version_ = 11;
    bool keep_alive_ = false;
    bool stop_requested_ = false;
    std::size_t served_ = 0;
    Phase phase_ = Phase::handshake;
};

// A connection on the API listener. Until the client's first bytes arrive it holds only a
// socket and a timer (no TLS state), so idle half-open connections cost little memory.
class TlsSession final : public HttpSession<TlsSession>,
                         public std::enable_shared_from_this<TlsSession> {
  public:
    // public_listener: server authentication only, no client certificate (Limits and the
    // connection count of that listener; no handshake cap: no connection there authenticates).
    TlsSession(std::shared_ptr<State> state, tcp::socket socket, std::string remote,
               bool public_listener)
        : HttpSession(state, socket.get_executor(),
                      public_listener ? *state->public_handler : *state->api_handler,
                      public_listener ? state->options.public_limits : state->options.limits,
                      public_listener ? state->active_public : state->active_api,
                      std::move(remote)),
          socket_(std::move(socket)),
          timer_(ex_),
          public_(public_listener) {
        if (!public_) handshake_slot_.emplace(state_->handshaking);
    }

    void run() {
        state_->add(this, weak_from_this());
        if (state_->stopping.load()) return;
        deadline_ = std::chrono::steady_clock::now() + limits_.handshake_timeout;
        timer_.expires_at(deadline_);
        timer_.async_wait(
            beast::bind_front_handler(&TlsSession::on_handshake_timer, shared_from_this()));
        socket_.async_wait(tcp::socket::wait_read,
                           beast::bind_front_handler(&TlsSession::on_readable, shared_from_this()));
    }

    TlsStream& stream() { return *tls_; }
    TlsStream& lowest() { return *tls_; }

    // Between requests: wait for the socket to become readable without a TLS read pending, so
    // OpenSSL can release its record buffer (SSL_MODE_RELEASE_BUFFERS) while the connection is
    // idle. If the TLS layer already holds input (a pipelined request), read it at once.
    void wait_idle() {
        if (tls_->has_buffered_input()) {
            read_first_bytes(limits_.idle_timeout);
            return;
        }
        idle_started_ = std::chrono::steady_clock::now();
        idle_waiting_ = true;
        timer_.expires_after(limits_.idle_timeout);
        timer_.async_wait(
            beast::bind_front_handler(&TlsSession::on_idle_timer, shared_from_this()));
        tls_->socket().async_wait(
            tcp::socket::wait_read,
            beast::bind_front_handler(&TlsSession::on_idle_readable, shared_from_this()));
    }

    void cancel_io() {
        if (tls_) {
            tls_->socket().cancel();
        } else {
            close_socket();
        }
    }

    void close_socket() {
        beast::error_code ec;
        timer_.cancel();
        if (tls_) {
            tls_->close();
        } else {
            socket_.close(ec);
        }
    }

    // RFC 8446 §6.1: send close_notify before closing, bounded by the write timeout.
    void do_close() {
        if (phase_ == Phase::closing || phase_ == Phase::closed) return;
        phase_ = Phase::closing;
        tls_->expires_after(limits_.write_timeout);
        tls_->async_shutdown(
            beast::bind_front_handler(&TlsSession::on_shutdown, shared_from_this()));
    }

  private:
    void on_idle_timer(beast::error_code ec) {
        // Cancelled, or bytes arrived first (the wait completed before this handler ran).
        if (ec || phase_ != Phase::idle || !idle_waiting_) return;
        idle_waiting_ = false;
        state_->timeouts.fetch_add(1);
        phase_ = Phase::closed;
        close_socket();
    }

    void on_idle_readable(beast::error_code ec) {
        timer_.cancel();
        if (phase_ != Phase::idle || !idle_waiting_) return;  // closed by the idle timer
        idle_waiting_ = false;
        if (ec) {
            on_first_bytes(ec, 0);  // cancelled by a shutdown request, or a socket error
            return;
        }
        // Bytes (or EOF) arrived: the rest of the idle timeout still bounds the first read.
        const auto waited = std::chrono::steady_clock::now() - idle_started_;
        const auto left = limits_.idle_timeout - waited;
        read_first_bytes(left > std::chrono::steady_clock::duration::zero()
                             ? left
                             : std::chrono::steady_clock::duration(std::chrono::milliseconds(1)));
    }

    void on_handshake_timer(beast::error_code ec) {
        if (ec || tls_) return;  // cancelled, or the handshake has started
        state_->timeouts.fetch_add(1);
        count_handshake_failure("no ClientHello before the handshake timeout");
        close_socket();
    }

    void on_readable(beast::error_code ec) {
        timer_.cancel();
        if (ec || stop_requested_ || phase_ == Phase::closed) return;
        ctx_ = (public_ ? state_->public_tls : state_->tls)->current();
        tls_.emplace(std::move(socket_), ctx_->native_handle());
        if (tls_->native_handle() == nullptr) {
            count_handshake_failure("cannot create the TLS state (out of memory)");
            phase_ = Phase::closed;
            close_socket();
            return;
        }
        tls_->expires_at(deadline_);
        tls_->async_handshake(
            beast::bind_front_handler(&TlsSession::on_handshake, shared_from_this()));
    }

    void on_handshake(beast::error_code ec) {
        handshake_slot_.reset();  // through the handshake, or out
        if (ec) {
            if (ec == beast::error::timeout) state_->timeouts.fetch_add(1);
            count_handshake_failure(ec.message());
            phase_ = Phase::closed;
            return;  // no close_notify after a failed handshake; the socket closes with us
        }
        if (public_) {  // nobody to identify
            do_read();
            return;
        }
        // Precondition of identity extraction: OpenSSL verified the chain against the
        // configured CA (SSL_VERIFY_FAIL_IF_NO_PEER_CERT guarantees a certificate).
        X509* cert = SSL_get0_peer_certificate(stream().native_handle());
        if (cert == nullptr || SSL_get_verify_result(stream().native_handle()) != X509_V_OK) {
            count_handshake_failure("client certificate missing or unverified");
            phase_ = Phase::closed;
            close_socket();
            return;
        }
        auto identity = identity_from_certificate(cert);
        if (!identity) {
            count_handshake_failure(identity.error().message);
            do_close();
            return;
        }
        identity_ = std::move(identity).value();
        authenticated_ = true;
        do_read();
    }

    void on_shutdown(beast::error_code) {
        // Lingering close (as HTTP servers do after answering early, e.g. 413): stop sending,
        // then read and discard what the client still sends for a short while, so the kernel
        // does not answer unread bytes with a reset that can destroy the response the client
        // has not read yet. Bounded in time and bytes.
        beast::error_code ec;
        tls_->socket().shutdown(tcp::socket::shutdown_send, ec);
        if (ec) {
            phase_ = Phase::closed;
            close_socket();
            return;
        }
        linger_buffer_ = std::make_unique<char[]>(kLingerChunk);
        lingered_ = 0;
        timer_.expires_after(kLingerTime);
        timer_.async_wait([self = shared_from_this()](beast::error_code timer_ec) {
            if (timer_ec || self->phase_ == Phase::closed) return;  // cancelled: closed already
            self->end_linger();
        });
        do_linger();
    }

    void end_linger() {
        linger_buffer_.reset();
        phase_ = Phase::closed;
        close_socket();
    }

    // Raw reads below TLS: what the client still sends is discarded unread.
    void do_linger() {
        tls_->socket().async_read_some(
            asio::buffer(linger_buffer_.get(), kLingerChunk),
            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                self->lingered_ += n;
                if (ec || self->lingered_ > kLingerMaxBytes) {
                    self->end_linger();
                    return;
                }
                self->do_linger();
            });
    }

    static constexpr std::size_t kLingerChunk = 4096;
    static constexpr std::size_t kLingerMaxBytes = 256 * 1024;
    static constexpr std::chrono::milliseconds kLingerTime{1000};
    std::unique_ptr<char[]> linger_buffer_;
    std::size_t lingered_ = 0;

    void count_handshake_failure(const std::string& reason) {
        state_->handshake_failures.fetch_add(1);
        state_->handshake_log.log("net: TLS handshake failed from " + remote_ + ": " + reason);
    }

    tcp::socket socket_;        // until the handshake starts
    asio::steady_timer timer_;  // handshake deadline, then the idle deadline between requests
    std::optional<ConnectionSlot> handshake_slot_;  // Limits::max_handshakes, until handshaken
    bool public_ = false;
    std::chrono::steady_clock::time_point idle_started_;
    bool idle_waiting_ = false;
    std::chrono::steady_clock::time_point deadline_;
    std::shared_ptr<ssl::context> ctx_;  // keeps the context alive for this connection
    std::optional<TlsStream> tls_;
};

// A connection on the plain-HTTP operations listener: no TLS, no identity.
class PlainSession final : public HttpSession<PlainSession>,
                           public std::enable_shared_from_this<PlainSession> {
  public:
    PlainSession(std::shared_ptr<State> state, tcp::socket socket, std::string remote)
        : HttpSession(state, socket.get_executor(), *state->ops_handler, state->options.ops_limits,
                      state->active_ops, std::move(remote)),
          stream_(std::move(socket)) {}

    void run() {
        state_->add(this, weak_from_this());
        do_read();
    }

    beast::tcp_stream& stream() { return stream_; }
    beast::tcp_stream& lowest() { return stream_; }
    void wait_idle() { read_first_bytes(limits_.idle_timeout); }
    void cancel_io() { stream_.socket().cancel(); }
    void close_socket() {
        beast::error_code ec;
        stream_.socket().close(ec);
    }
    void do_close() {
        if (phase_ == Phase::closed) return;
        phase_ = Phase::closed;
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }

  private:
    beast::tcp_stream stream_;
};

// Accepts connections for one listener. New connections get their own strand.
class Listener : public std::enable_shared_from_this<Listener> {
  public:
    enum class Kind { api, ops, public_jwks };

    Listener(std::shared_ptr<State> state, Kind kind)
        : state_(std::move(state)),
          kind_(kind),
          acceptor_(asio::make_strand(state_->ioc)),
          backoff_(acceptor_.get_executor()) {}

    core::Status open(const ListenAddress& address) {
        beast::error_code ec;
        const auto ip = asio::ip::make_address(address.host, ec);
        if (ec) {
            return core::make_error(core::ErrorKind::usage, "net.listen",
                                    "invalid listen address '" + address.host + "'");
        }
        const tcp::endpoint endpoint(ip, address.port);
        const std::string where = address.host + ":" + std::to_string(address.port);
        acceptor_.open(endpoint.protocol(), ec);
        if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec) acceptor_.bind(endpoint, ec);
        if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
        if (ec) {
            return core::make_error(core::ErrorKind::unavailable, "net.listen",
                                    "cannot listen on " + where + ": " + ec.message());
        }
        port_ = acceptor_.local_endpoint(ec).port();
        return core::ok_status();
    }

    std::uint16_t port() const noexcept { return port_; }

    void run() {
        asio::dispatch(acceptor_.get_executor(),
                       beast::bind_front_handler(&Listener::do_accept, shared_from_this()));
    }

    void close() {
        asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
            beast::error_code ec;
            self->acceptor_.close(ec);
            self->backoff_.cancel();
        });
    }

  private:
    void do_accept() {
        acceptor_.async_accept(asio::make_strand(state_->ioc),
                               beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
    }

    void on_accept(beast::error_code ec, tcp::socket socket) {
        if (!acceptor_.is_open() || state_->stopping.load()) return;
        if (ec) {
            state_->accept_errors.fetch_add(1);
            state_->accept_log.log("net: accept failed: " + ec.message());
            // Out of descriptors or memory: back off instead of spinning; pending
            // connections stay in the backlog until descriptors are freed.
            backoff_.expires_after(std::chrono::milliseconds(50));
            backoff_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
                if (!wait_ec && self->acceptor_.is_open()) self->do_accept();
            });
            return;
        }
        state_->accepted.fetch_add(1);
        const bool api = kind_ == Kind::api;
        const Limits& limits = api                  ? state_->options.limits
                               : kind_ == Kind::ops ? state_->options.ops_limits
                                                    : state_->options.public_limits;
        auto& active = api                  ? state_->active_api
                       : kind_ == Kind::ops ? state_->active_ops
                                            : state_->active_public;
        if (active.load() >= limits.max_connections ||
            (api && state_->handshaking.load() >= limits.max_handshakes)) {
            state_->rejected.fetch_add(1);
            if (api && active.load() < limits.max_connections) {
                state_->rejected_handshakes.fetch_add(1);
            }
            beast::error_code close_ec;
            socket.close(close_ec);  // over the cap: closed at once
        } else {
            beast::error_code opt_ec;
            socket.set_option(tcp::no_delay(true), opt_ec);
            std::string remote = endpoint_text(socket);
            if (kind_ != Kind::ops) {
                std::make_shared<TlsSession>(state_, std::move(socket), std::move(remote),
                                             kind_ == Kind::public_jwks)
                    ->run();
            } else {
                std::make_shared<PlainSession>(state_, std::move(socket), std::move(remote))->run();
            }
        }
        do_accept();
    }

    std::shared_ptr<State> state_;
    Kind kind_;
    tcp::acceptor acceptor_;
    asio::steady_timer backoff_;
    std::uint16_t port_ = 0;
};

}  // namespace impl

core::Result<std::unique_ptr<Server>> Server::create(ServerOptions options,
                                                     std::shared_ptr<Handler> api_handler,
                                                     std::shared_ptr<Handler> ops_handler,
                                                     std::shared_ptr<Handler> public_handler) {
    if (!api_handler) {
        return core::make_error(core::ErrorKind::usage, "net.config", "no API handler");
    }
    if (options.ops && !ops_handler) {
        return core::make_error(core::ErrorKind::usage, "net.config",
                                "an operations listener needs a handler");
    }
    if (options.public_listener && !public_handler) {
        return core::make_error(core::ErrorKind::usage, "net.config",
                                "a public listener needs a handler");
    }
    raise_fd_limit();
    auto tls = ReloadableServerContext::create(options.tls);
    if (!tls) return std::move(tls).error();
    std::shared_ptr<ReloadableServerContext> public_tls;
    if (options.public_listener) {
        auto files = options.tls;
        files.client_ca.clear();
        auto made = ReloadableServerContext::create(files);
        if (!made) return std::move(made).error();
        public_tls = std::move(made).value();
    }

    std::unique_ptr<Server> server(new Server());
    const auto ops_address = options.ops;
    const auto api_address = options.api;
    const auto public_address = options.public_listener;
    server->state_ = std::make_shared<State>(std::move(options));
    auto& state = *server->state_;
    state.api_handler = std::move(api_handler);
    state.ops_handler = std::move(ops_handler);
    state.tls = std::move(tls).value();
    state.public_handler = std::move(public_handler);
    state.public_tls = std::move(public_tls);

    try {
        using Kind = impl::Listener::Kind;
        state.api_listener = std::make_shared<impl::Listener>(server->state_, Kind::api);
        if (auto s = state.api_listener->open(api_address); !s) return std::move(s).error();
        if (ops_address) {
            state.ops_listener = std::make_shared<impl::Listener>(server->state_, Kind::ops);
            if (auto s = state.ops_listener->open(*ops_address); !s) return std::move(s).error();
        }
        if (public_address) {
            state.public_listener =
                std::make_shared<impl::Listener>(server->state_, Kind::public_jwks);
            if (auto s = state.public_listener->open(*public_address); !s) {
                return std::move(s).error();
            }
        }
    } catch (const std::exception& e) {
        return core::make_error(core::ErrorKind::unavailable, "net.listen", e.what());
    }
    return server;
}

Server::~Server() {
    if (!state_) return;
    if (started_ && !stopped_) stop(std::chrono::milliseconds(0));
    // Break the listener <-> state cycle.
    state_->api_listener.reset();
    state_->ops_listener.reset();
    state_->public_listener.reset();
}

core::Status Server::start() {
    if (started_) {
        return core::make_error(core::ErrorKind::conflict, "net.started", "already started");
    }
    started_ = true;
    // OpenSSL writes the API sockets with write(2): a peer that has gone must be an EPIPE error
    // on that connection, not a SIGPIPE that ends the process.
    std::signal(SIGPIPE, SIG_IGN);
    state_->work.emplace(state_->ioc.get_executor());
    state_->api_listener->run();
    if (state_->ops_listener) state_->ops_listener->run();
    if (state_->public_listener) state_->public_listener->run();
    const unsigned n = state_->options.io_threads == 0 ? 1 : state_->options.io_threads;
    for (unsigned i = 0; i < n; ++i) {
        threads_.emplace_back([state = state_, i] {
            core::name_this_thread("io-" + std::to_string(i));
            for (;;) {
                try {
                    state->ioc.run();
                    return;
                } catch (const std::exception& e) {
                    state->options.log(std::string("net: io thread caught: ") + e.what());
                }
            }
        });
    }
    return core::ok_status();
}

void Server::stop(std::chrono::milliseconds drain) {
    if (!started_ || stopped_) return;
    stopped_ = true;
    state_->stopping.store(true);
    state_->api_listener->close();
    if (state_->ops_listener) state_->ops_listener->close();
    if (state_->public_listener) state_->public_listener->close();
    for (auto& s : state_->snapshot()) s->request_shutdown();

    auto active = [this] {
        return state_->active_api.load() + state_->active_ops.load() + state_->active_public.load();
    };
    const auto deadline = std::chrono::steady_clock::now() + drain;
    while (active() > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (active() > 0) {
        for (auto& s : state_->snapshot()) s->force_close();
        const auto hard = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        while (active() > 0 && std::chrono::steady_clock::now() < hard) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    state_->work.reset();
    state_->ioc.stop();
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
    threads_.clear();
    // Run what is still queued (completions of closed sessions) so no session, and through it
    // this state, is kept alive by an abandoned handler.
    for (auto& s : state_->snapshot()) s->force_close();
    state_->ioc.restart();
    for (int round = 0; round < 100 && state_->ioc.poll() > 0; ++round) {
    }
}

core::Status Server::reload_tls(const ServerTlsFiles& files) {
    if (state_->public_tls) {
        // Both or neither: check the files with the API's context first.
        if (auto st = state_->tls->reload(files); !st) return st;
        auto public_files = files;
        public_files.client_ca.clear();
        return state_->public_tls->reload(public_files);
    }
    return state_->tls->reload(files);
}

std::uint16_t Server::api_port() const noexcept {
    return state_->api_listener ? state_->api_listener->port() : 0;
}

std::uint16_t Server::ops_port() const noexcept {
    return state_->ops_listener ? state_->ops_listener->port() : 0;
}

std::uint16_t Server::public_port() const noexcept {
    return state_->public_listener ? state_->public_listener->port() : 0;
}

ServerStats Server::stats() const noexcept {
    ServerStats s;
    s.connections_accepted = state_->accepted.load();
    s.connections_rejected = state_->rejected.load();
    s.handshakes_rejected = state_->rejected_handshakes.load();
    s.handshakes_active = state_->handshaking.load();
    s.connections_active = state_->active_api.load();
    s.ops_connections_active = state_->active_ops.load();
    s.public_connections_active = state_->active_public.load();
    s.handshake_failures = state_->handshake_failures.load();
    s.requests = state_->requests.load();
    s.bad_requests = state_->bad_requests.load();
    s.timeouts = state_->timeouts.load();
    s.accept_errors = state_->accept_errors.load();
    return s;
}

std::uint64_t Server::handshake_failures() const noexcept {
    return state_->handshake_failures.load();
}

boost::asio::io_context& Server::io_context() noexcept { return state_->ioc; }

}  // namespace licentra::net
