// The API listener's server-side TLS stream. OpenSSL reads and writes the socket itself
// (SSL_set_fd on the non-blocking socket) and Asio only waits for readiness when OpenSSL asks
// for it (SSL_ERROR_WANT_READ / WANT_WRITE). Unlike asio::ssl::stream, which copies every
// record through a BIO pair and two fixed 17 KiB buffers per connection, an open connection
// holds only what OpenSSL holds, and with SSL_MODE_RELEASE_BUFFERS an idle one holds no record
// buffers at all. Models Asio's AsyncReadStream and AsyncWriteStream, so Beast's HTTP reads and
// writes use it directly.
//
// Deadlines (as beast::basic_stream): expires_after/expires_at/expires_never set one absolute
// deadline for the operations that follow (a wait already under way keeps its own). An operation
// still waiting for the socket when it passes closes the socket and completes with
// beast::error::timeout, and so does any later operation. The timer is armed only when an operation
// actually waits, so a request whose bytes are already there costs no timer operation.
//
// Thread-safety: as any Asio I/O object, one operation of each direction at a time, all on the
// socket's executor (a strand). Once the socket is closed (close(), a deadline, or the owner)
// OpenSSL is never asked to read or write again: the descriptor number may already belong to
// another connection.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace licentra::net {

class TlsStream {
  public:
    using socket_type = boost::asio::ip::tcp::socket;
    using executor_type = socket_type::executor_type;
    using clock = std::chrono::steady_clock;

    // Takes the accepted socket and makes a server-side SSL object from `ctx` (which the caller
    // keeps alive for the stream's lifetime). Check native_handle() != nullptr: SSL_new or
    // SSL_set_fd can fail (out of memory), and the stream is then unusable.
    TlsStream(socket_type socket, SSL_CTX* ctx);
    TlsStream(const TlsStream&) = delete;
    TlsStream& operator=(const TlsStream&) = delete;
    ~TlsStream();

    executor_type get_executor() noexcept { return impl_->socket.get_executor(); }
    SSL* native_handle() const noexcept { return impl_->ssl.get(); }
    socket_type& socket() noexcept { return impl_->socket; }

    void expires_after(clock::duration timeout) { expires_at(clock::now() + timeout); }
    void expires_at(clock::time_point deadline);
    void expires_never() { expires_at(clock::time_point::max()); }

    // Closes the socket (pending waits complete with operation_aborted); OpenSSL is not asked
    // to send anything. Idempotent.
    void close() noexcept;

    // True while OpenSSL holds decrypted or raw input not yet returned by a read (a pipelined
    // request): a readiness wait on the socket would not see it.
    [[nodiscard]] bool has_buffered_input() const noexcept;

    // Server handshake. Handler: void(boost::system::error_code).
    template <class Token>
    auto async_handshake(Token&& token) {
        return run<false>([](Impl& impl) { return impl.handshake_once(); },
                          std::forward<Token>(token));
    }

    // Sends close_notify (does not wait for the peer's). Handler: void(error_code).
    template <class Token>
    auto async_shutdown(Token&& token) {
        return run<false>([](Impl& impl) { return impl.shutdown_once(); },
                          std::forward<Token>(token));
    }

    // Reads into the first non-empty buffer. Handler: void(error_code, std::size_t). The peer's
    // close_notify completes with asio::error::eof, an end of stream without one with
    // asio::ssl::error::stream_truncated (as asio::ssl::stream).
    template <class MutableBufferSequence, class Token>
    auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
        boost::asio::mutable_buffer first;
        for (auto it = boost::asio::buffer_sequence_begin(buffers);
             it != boost::asio::buffer_sequence_end(buffers); ++it) {
            first = boost::asio::mutable_buffer(*it);
            if (first.size() != 0) break;
        }
        return run<true>([first](Impl& impl) { return impl.read_once(first); },
                         std::forward<Token>(token));
    }

    // Writes as one TLS record as much of the sequence as fits in one (up to 16 KiB, gathered
    // from several buffers so that a response's header and body leave in one record and one
    // system call). Handler: void(error_code, std::size_t).
    template <class ConstBufferSequence, class Token>
    auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
        return run<true>(
            [buffers](Impl& impl) {
                Gather gather;
                for (auto it = boost::asio::buffer_sequence_begin(buffers);
                     it != boost::asio::buffer_sequence_end(buffers) && !gather.full(); ++it) {
                    gather.add(boost::asio::const_buffer(*it));
                }
                return impl.write_once(gather.view());
            },
            std::forward<Token>(token));
    }

  private:
    enum class Want { nothing, read, write };

    // The outcome of one attempt of an OpenSSL call.
    struct Step {
        Want want = Want::nothing;
        boost::system::error_code ec;
        std::size_t bytes = 0;
    };

    // Up to one record's worth of the buffers to write, copied only when there is more than one.
    class Gather {
      public:
        static constexpr std::size_t kRecord = 16 * 1024;
        bool full() const noexcept { return size_ >= kRecord; }
        void add(boost::asio::const_buffer b);
        boost::asio::const_buffer view() const noexcept;

      private:
        boost::asio::const_buffer first_;
        bool copied_ = false;
        std::size_t size_ = 0;
        unsigned char data_[kRecord];
    };

    struct SslFree {  // libssl's one owned object; crypto/ossl.hpp holds libcrypto's deleters
        void operator()(SSL* ssl) const noexcept;
    };

    struct Impl {
        Impl(socket_type s, SSL_CTX* ctx);
        Step handshake_once();
        Step shutdown_once();
        Step read_once(boost::asio::mutable_buffer b);
        Step write_once(boost::asio::const_buffer b);
        template <class Transfer, class Buffer>
        Step transfer(Transfer fn, Buffer b);
        Step outcome(int ret, std::size_t bytes);
        bool usable() const noexcept;
        boost::system::error_code unusable_error() const noexcept;
        // Before a readiness wait: the error that ends the operation instead, or none.
        boost::system::error_code begin_wait(const std::shared_ptr<Impl>& self);
        // After it: the operation's error, or none to attempt again.
        boost::system::error_code end_wait(boost::system::error_code ec);
        void on_deadline(std::uint64_t generation);
        void drop_stale_timer();
        void close() noexcept;

        socket_type socket;
        std::unique_ptr<SSL, SslFree> ssl;
        boost::asio::steady_timer timer;
        clock::time_point deadline = clock::time_point::max();
        clock::time_point armed = clock::time_point::max();  // the timer's expiry, if waiting
        std::uint64_t generation = 0;  // of the timer wait; a stale one does nothing
        unsigned waiting = 0;          // operations waiting for the socket
        bool timed_out = false;
    };

    // One operation: attempt, wait for what OpenSSL wants, attempt again, until done. An
    // operation that finishes in its first attempt completes through a post, never inside the
    // initiating call.
    template <bool WithBytes, class Attempt>
    class Op {
      public:
        Op(std::shared_ptr<Impl> impl, Attempt attempt)
            : impl_(std::move(impl)), attempt_(std::move(attempt)) {}

        template <class Self>
        void operator()(Self& self, boost::system::error_code ec = {}) {
            if (state_ == State::posted) return complete(self);
            if (state_ == State::waiting) {
                state_ = State::running;
                if (const auto end = impl_->end_wait(ec)) return finish(self, end, 0);
            }
            const Step step = attempt_(*impl_);
            if (step.want == Want::nothing) return finish(self, step.ec, step.bytes);
            if (const auto end = impl_->begin_wait(impl_)) return finish(self, end, 0);
            state_ = State::waiting;
            impl_->socket.async_wait(
                step.want == Want::read ? socket_type::wait_read : socket_type::wait_write,
                std::move(self));
        }

      private:
        enum class State { first, running, waiting, posted };

        template <class Self>
        void finish(Self& self, boost::system::error_code ec, std::size_t bytes) {
            ec_ = ec;
            bytes_ = bytes;
            if (state_ == State::first) {
                state_ = State::posted;
                boost::asio::post(impl_->socket.get_executor(), std::move(self));
                return;
            }
            complete(self);
        }

        template <class Self>
        void complete(Self& self) {
            auto impl = std::move(impl_);  // the stream may go with the handler
            if constexpr (WithBytes) {
                self.complete(ec_, bytes_);
            } else {
                self.complete(ec_);
            }
        }

        std::shared_ptr<Impl> impl_;
        Attempt attempt_;
        State state_ = State::first;
        boost::system::error_code ec_;
        std::size_t bytes_ = 0;
    };

    template <bool WithBytes, class Attempt, class Token>
    auto run(Attempt attempt, Token&& token) {
        using Signature =
            std::conditional_t<WithBytes, void(boost::system::error_code, std::size_t),
                               void(boost::system::error_code)>;
        return boost::asio::async_compose<Token, Signature>(
            Op<WithBytes, Attempt>(impl_, std::move(attempt)), token, impl_->socket);
    }

    std::shared_ptr<Impl> impl_;
};

}  // namespace licentra::net
