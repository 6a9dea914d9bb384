#include "net/tls_stream.hpp"

#include <openssl/err.h>

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <cerrno>
#include <cstring>

namespace licentra::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

// Before each OpenSSL call: SSL_get_error reads this thread's error queue, and errno tells a
// system error from an end of stream.
void clear_errors() noexcept {
    ERR_clear_error();
    errno = 0;
}

}  // namespace

void TlsStream::SslFree::operator()(SSL* ssl) const noexcept { SSL_free(ssl); }

TlsStream::TlsStream(socket_type socket, SSL_CTX* ctx)
    : impl_(std::make_shared<Impl>(std::move(socket), ctx)) {}

TlsStream::~TlsStream() {
    // A deadline's timer wait holds only a weak reference; cancel it so the handler is not
    // kept queued for a stream that is gone.
    impl_->timer.cancel();
}

TlsStream::Impl::Impl(socket_type s, SSL_CTX* ctx)
    : socket(std::move(s)), ssl(SSL_new(ctx)), timer(socket.get_executor()) {
    if (!ssl) return;
    error_code ec;
    socket.non_blocking(true, ec);
    if (ec || SSL_set_fd(ssl.get(), socket.native_handle()) != 1) {
        ssl.reset();
        ERR_clear_error();
        return;
    }
    SSL_set_accept_state(ssl.get());
    // Read whole records (and what follows) in one system call instead of header, then body.
    SSL_set_read_ahead(ssl.get(), 1);
    // A write may be retried from a re-gathered copy of the same bytes, and completes per record.
    SSL_set_mode(ssl.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

void TlsStream::expires_at(clock::time_point deadline) {
    Impl& impl = *impl_;
    impl.deadline = deadline;
    impl.drop_stale_timer();
}

void TlsStream::close() noexcept { impl_->close(); }

bool TlsStream::has_buffered_input() const noexcept {
    SSL* ssl = impl_->ssl.get();
    return ssl != nullptr && SSL_has_pending(ssl) == 1;
}

void TlsStream::Impl::close() noexcept {
    error_code ignored;
    socket.close(ignored);
    timer.cancel();
    armed = clock::time_point::max();
    ++generation;
}

bool TlsStream::Impl::usable() const noexcept { return ssl && socket.is_open(); }

// Why an operation cannot start: the deadline that closed the stream, or the closed socket.
error_code TlsStream::Impl::unusable_error() const noexcept {
    return timed_out ? error_code(boost::beast::error::timeout) : asio::error::bad_descriptor;
}

TlsStream::Step TlsStream::Impl::handshake_once() {
    if (!usable()) return {Want::nothing, unusable_error(), 0};
    clear_errors();
    return outcome(SSL_do_handshake(ssl.get()), 0);
}

TlsStream::Step TlsStream::Impl::shutdown_once() {
    if (!usable()) return {Want::nothing, unusable_error(), 0};
    clear_errors();
    const int ret = SSL_shutdown(ssl.get());
    if (ret >= 0) return {};  // 0: close_notify sent; 1: the peer's already received
    return outcome(ret, 0);
}

// One SSL_read_ex or SSL_write_ex: the bytes it moved, or what it waits for.
template <class Transfer, class Buffer>
TlsStream::Step TlsStream::Impl::transfer(Transfer fn, Buffer b) {
    if (!usable()) return {Want::nothing, unusable_error(), 0};
    if (b.size() == 0) return {};
    clear_errors();
    std::size_t moved = 0;
    const int ret = fn(ssl.get(), b.data(), b.size(), &moved);
    return ret == 1 ? Step{Want::nothing, {}, moved} : outcome(ret, 0);
}

TlsStream::Step TlsStream::Impl::read_once(asio::mutable_buffer b) {
    return transfer(&SSL_read_ex, b);
}

TlsStream::Step TlsStream::Impl::write_once(asio::const_buffer b) {
    return transfer(&SSL_write_ex, b);
}

// SSL_get_error's verdict as a wait or an error code, mapped as asio::ssl::stream maps it so
// that callers see the same codes: the peer's close_notify is eof, an end of stream without it
// stream_truncated, a protocol error the OpenSSL reason in asio's SSL category.
TlsStream::Step TlsStream::Impl::outcome(int ret, std::size_t bytes) {
    const int saved_errno = errno;
    switch (SSL_get_error(ssl.get(), ret)) {
        case SSL_ERROR_NONE:
            return {Want::nothing, {}, bytes};
        case SSL_ERROR_WANT_READ:
            return {Want::read, {}, 0};
        case SSL_ERROR_WANT_WRITE:
            return {Want::write, {}, 0};
        case SSL_ERROR_ZERO_RETURN:
            return {Want::nothing, asio::error::eof, 0};
        case SSL_ERROR_SYSCALL: {
            const unsigned long code = ERR_get_error();
            ERR_clear_error();
            if (code != 0) {
                return {Want::nothing,
                        error_code(static_cast<int>(code), asio::error::get_ssl_category()), 0};
            }
            if (saved_errno != 0) {
                return {Want::nothing, error_code(saved_errno, boost::system::system_category()),
                        0};
            }
            return {Want::nothing, asio::ssl::error::stream_truncated, 0};
        }
        case SSL_ERROR_SSL:
        default: {
            const unsigned long code = ERR_peek_last_error();
            ERR_clear_error();
            if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
                ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
                return {Want::nothing, asio::ssl::error::stream_truncated, 0};
            }
            return {
                Want::nothing,
                error_code(static_cast<int>(
                               code != 0 ? code : ERR_PACK(ERR_LIB_SSL, 0, ERR_R_INTERNAL_ERROR)),
                           asio::error::get_ssl_category()),
                0};
        }
    }
}

void TlsStream::Impl::drop_stale_timer() {
    // A wait under way keeps the deadline it started with (as beast::basic_stream); with none
    // under way, a timer armed for another deadline than the one in force is stale (the deadline
    // changed during an earlier wait) and must not end a later wait.
    if (waiting == 0 && armed != clock::time_point::max() && armed != deadline) {
        ++generation;
        armed = clock::time_point::max();
        timer.cancel();
    }
}

error_code TlsStream::Impl::begin_wait(const std::shared_ptr<Impl>& self) {
    if (timed_out) return boost::beast::error::timeout;
    drop_stale_timer();
    if (deadline != clock::time_point::max()) {
        if (clock::now() >= deadline) {
            timed_out = true;
            close();
            return boost::beast::error::timeout;
        }
        if (armed != deadline) {
            armed = deadline;
            const std::uint64_t current = ++generation;
            timer.expires_at(deadline);
            timer.async_wait([weak = std::weak_ptr<Impl>(self), current](error_code ec) {
                if (ec) return;
                if (auto impl = weak.lock()) impl->on_deadline(current);
            });
        }
    }
    ++waiting;
    return {};
}

error_code TlsStream::Impl::end_wait(error_code ec) {
    --waiting;
    if (timed_out) return boost::beast::error::timeout;
    return ec;
}

void TlsStream::Impl::on_deadline(std::uint64_t current) {
    if (current != generation) return;  // re-armed or cancelled since
    armed = clock::time_point::max();
    if (waiting == 0) return;  // the next wait sees the deadline has passed
    timed_out = true;
    close();
}

void TlsStream::Gather::add(asio::const_buffer b) {
    if (b.size() == 0 || full()) return;
    if (size_ == 0) {
        first_ = b;
        size_ = b.size();
        return;
    }
    if (!copied_) {
        std::memcpy(data_, first_.data(), size_);  // size_ < kRecord: not full
        copied_ = true;
    }
    const std::size_t n = std::min(b.size(), kRecord - size_);
    std::memcpy(data_ + size_, b.data(), n);
    size_ += n;
}

asio::const_buffer TlsStream::Gather::view() const noexcept {
    if (!copied_) return first_;
    return {data_, size_};
}

}  // namespace licentra::net
