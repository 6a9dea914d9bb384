// net::TlsStream against a real OpenSSL client on 127.0.0.1: the bytes, the end-of-stream
// codes, the deadline, and that a closed stream never touches its old descriptor again.
#include "net/tls_stream.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <future>
#include <thread>
#include <vector>

#include "net/tls.hpp"
#include "support/test_support.hpp"
#include "support/tls_certs.hpp"
#include "tls_test_client.hpp"

namespace licentra::net {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using namespace std::chrono_literals;
using tcp = asio::ip::tcp;

struct Pki {
    test::TempDir dir;
    test::TestPki ca{dir.path()};
    test::CertFiles server = ca.server();
    test::CertFiles client = ca.client("client", "license-server");
};

// One io thread, an acceptor on an ephemeral port, and a server stream per accepted connection.
class TlsStreamTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto ctx = make_server_context({pki_.server.cert, pki_.server.key, pki_.ca.ca_file()});
        ASSERT_TRUE(ctx.ok()) << ctx.error().to_string();
        ctx_ = std::move(ctx).value();
        acceptor_.open(tcp::v4());
        acceptor_.bind({asio::ip::address_v4::loopback(), 0});
        acceptor_.listen();
        io_ = std::thread([this] { ioc_.run(); });
    }
    void TearDown() override {
        stream_.reset();
        work_.reset();
        io_.join();
    }

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    testing::RawTlsOptions client_options() const { return {pki_.ca.ca_file(), pki_.client}; }

    // Accepts one connection (the client connects from another thread) and makes its stream.
    void accept() {
        tcp::socket socket(strand_);
        acceptor_.accept(socket);
        stream_.emplace(std::move(socket), ctx_->native_handle());
        ASSERT_NE(stream_->native_handle(), nullptr);
    }

    // Runs `fn` on the stream's strand and returns when it has run.
    template <class Fn>
    void on_strand(Fn fn) {
        std::promise<void> ran;
        asio::post(strand_, [&] {
            fn();
            ran.set_value();
        });
        ran.get_future().get();
    }

    error_code handshake() {
        std::promise<error_code> done;
        on_strand([&] { stream_->async_handshake([&](error_code ec) { done.set_value(ec); }); });
        return wait(done);
    }

    std::pair<error_code, std::string> read_some(std::size_t size = 4096) {
        std::promise<error_code> done;
        std::string buffer(size, '\0');
        std::size_t got = 0;
        on_strand([&] {
            stream_->async_read_some(asio::buffer(buffer), [&](error_code ec, std::size_t n) {
                got = n;
                done.set_value(ec);
            });
        });
        const error_code ec = wait(done);
        buffer.resize(got);
        return {ec, buffer};
    }

    // A read started on the strand (call it there); done() waits for it, bytes() is what it got.
    struct PendingRead {
        std::promise<error_code> result;
        std::string buffer = std::string(64, '\0');
        std::size_t got = 0;
        error_code done() { return wait(result); }
        std::string bytes() const { return buffer.substr(0, got); }
    };
    void start_read(PendingRead& r) {
        stream_->async_read_some(asio::buffer(r.buffer), [&r](error_code ec, std::size_t n) {
            r.got = n;
            r.result.set_value(ec);
        });
    }

    // Bounded: a stream that never completes fails the test instead of hanging it.
    static error_code wait(std::promise<error_code>& p) {
        auto f = p.get_future();
        if (f.wait_for(10s) != std::future_status::ready) {
            ADD_FAILURE() << "the operation did not complete";
            return asio::error::timed_out;
        }
        return f.get();
    }

    static inline Pki pki_;
    std::shared_ptr<asio::ssl::context> ctx_;
    asio::io_context ioc_;
    asio::strand<asio::io_context::executor_type> strand_ = asio::make_strand(ioc_);
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
        ioc_.get_executor()};
    tcp::acceptor acceptor_{ioc_};
    std::thread io_;
    std::optional<TlsStream> stream_;
};

TEST_F(TlsStreamTest, CarriesBytesBothWaysAndEndsWithCloseNotify) {
    std::promise<std::string> received;
    std::thread client([&] {
        testing::RawTls conn(port(), client_options());
        if (!conn.handshake_ok() || !conn.send("ping")) {
            received.set_value("client failed: " + conn.error());
            return;
        }
        received.set_value(conn.read_all());  // until the server's close_notify
    });
    accept();
    ASSERT_FALSE(handshake());
    const auto [ec, bytes] = read_some();
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(bytes, "ping");

    // Three buffers, one larger than a record: gathered, split and resumed as needed.
    const std::string head = "head:";
    const std::string big(40 * 1024, 'x');
    const std::string tail = ":tail";
    std::promise<error_code> wrote;
    std::size_t written = 0;
    on_strand([&] {
        const std::array<asio::const_buffer, 3> buffers{asio::buffer(head), asio::buffer(big),
                                                        asio::buffer(tail)};
        asio::async_write(*stream_, buffers, [&](error_code write_ec, std::size_t n) {
            written = n;
            wrote.set_value(write_ec);
        });
    });
    ASSERT_FALSE(wait(wrote));
    EXPECT_EQ(written, head.size() + big.size() + tail.size());
    std::promise<error_code> shut;
    on_strand([&] { stream_->async_shutdown([&](error_code s) { shut.set_value(s); }); });
    EXPECT_FALSE(wait(shut));
    auto f = received.get_future();
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(f.get(), head + big + tail);
    client.join();
}

// A send buffer far smaller than the data: OpenSSL reports WANT_WRITE mid-record again and
// again, and each retry re-gathers the same bytes from many small buffers. Every byte arrives,
// in order.
TEST_F(TlsStreamTest, AWriteThatFillsTheSocketWaitsAndResumesWithTheSameBytes) {
    constexpr std::size_t kPieces = 1000;
    constexpr std::size_t kPiece = 4000;  // four and a bit per record: always gathered
    std::vector<std::string> pieces;
    std::string expected;
    for (std::size_t i = 0; i < kPieces; ++i) {
        pieces.emplace_back(kPiece, static_cast<char>('a' + i % 26));
        pieces.back().replace(0, std::to_string(i).size(), std::to_string(i));
        expected += pieces.back();
    }
    std::promise<std::string> received;
    std::thread client([&] {
        testing::RawTls conn(port(), client_options());
        received.set_value(conn.handshake_ok() ? conn.read_all() : "client failed");
    });
    accept();
    on_strand([&] { stream_->socket().set_option(asio::socket_base::send_buffer_size(4096)); });
    ASSERT_FALSE(handshake());
    std::vector<asio::const_buffer> buffers;
    for (const auto& p : pieces) buffers.push_back(asio::buffer(p));
    std::promise<error_code> wrote;
    std::size_t written = 0;
    on_strand([&] {
        stream_->expires_after(30s);
        asio::async_write(*stream_, buffers, [&](error_code ec, std::size_t n) {
            written = n;
            wrote.set_value(ec);
        });
    });
    const error_code ec = wait(wrote);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(written, expected.size());
    std::promise<error_code> shut;
    on_strand([&] { stream_->async_shutdown([&](error_code s) { shut.set_value(s); }); });
    EXPECT_FALSE(wait(shut));
    auto f = received.get_future();
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    const std::string got = f.get();
    EXPECT_EQ(got.size(), expected.size());
    EXPECT_TRUE(got == expected)
        << "the bytes differ from offset "
        << std::mismatch(got.begin(), got.end(), expected.begin(), expected.end()).first -
               got.begin();
    client.join();
}

TEST_F(TlsStreamTest, ThePeersCloseNotifyIsEofAndABareCloseIsTruncated) {
    for (const bool notify : {true, false}) {
        std::promise<void> go;
        std::thread client([&] {
            testing::RawTls conn(port(), client_options());
            go.get_future().wait();
            if (notify) conn.close_notify();
        });  // the connection closes with conn
        accept();
        ASSERT_FALSE(handshake());
        go.set_value();
        const auto [ec, bytes] = read_some();
        if (notify) {
            EXPECT_EQ(ec, asio::error::eof) << ec.message();
        } else {
            EXPECT_EQ(ec, asio::ssl::error::stream_truncated) << ec.message();
        }
        EXPECT_EQ(bytes, "");
        client.join();
        stream_.reset();
    }
}

TEST_F(TlsStreamTest, AReadPastItsDeadlineTimesOutClosesAndTouchesTheSocketNoMore) {
    std::promise<void> done;
    std::promise<bool> closed;
    std::thread client([&] {
        testing::RawTls conn(port(), client_options());
        done.get_future().wait();
        closed.set_value(conn.peer_closed() && conn.read_all().empty());
    });
    accept();
    ASSERT_FALSE(handshake());
    on_strand([&] { stream_->expires_after(50ms); });
    const auto [ec, bytes] = read_some();  // the client sends nothing
    EXPECT_EQ(ec, boost::beast::error::timeout) << ec.message();
    bool open = true;
    on_strand([&] { open = stream_->socket().is_open(); });
    EXPECT_FALSE(open);

    // Every later operation fails at once, and nothing is written to the old descriptor.
    on_strand([&] { stream_->expires_never(); });
    std::promise<error_code> wrote;
    on_strand([&] {
        stream_->async_write_some(asio::buffer("late", 4), [&](error_code write_ec, std::size_t n) {
            EXPECT_EQ(n, 0u);
            wrote.set_value(write_ec);
        });
    });
    EXPECT_EQ(wait(wrote), boost::beast::error::timeout);
    done.set_value();
    auto f = closed.get_future();
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(f.get());
    client.join();
}

TEST_F(TlsStreamTest, AReadThatWaitsAndEndsBeforeItsDeadlineIsNotDisturbed) {
    std::promise<void> send;
    std::thread client([&] {
        testing::RawTls conn(port(), client_options());
        send.get_future().wait();
        conn.send("in time");
        conn.read_all();  // until the server closes
    });
    accept();
    ASSERT_FALSE(handshake());
    PendingRead read;
    on_strand([&] {
        stream_->expires_after(30s);
        start_read(read);
    });
    send.set_value();  // the read is waiting (nothing was sent before), its deadline armed
    const error_code ec = read.done();
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(read.bytes(), "in time");
    bool open = false;
    on_strand([&] { open = stream_->socket().is_open(); });
    EXPECT_TRUE(open);
    on_strand([&] { stream_->close(); });
    client.join();
}

// A deadline lifted while a read waits stays with that read (as beast::basic_stream), and must
// not end a later read that waits with no deadline. The check runs on a timer that expires after
// the lifted deadline on the same io thread, so the stale timer, if any, has fired by then.
TEST_F(TlsStreamTest, ADeadlineLiftedDuringAWaitDoesNotEndALaterWait) {
    std::promise<void> send_one;
    std::promise<void> send_two;
    std::thread client([&] {
        testing::RawTls conn(port(), client_options());
        send_one.get_future().wait();
        conn.send("one");
        send_two.get_future().wait();
        conn.send("two");
        conn.read_all();  // until the server closes
    });
    accept();
    ASSERT_FALSE(handshake());
    PendingRead first;
    const auto lifted = std::chrono::steady_clock::now() + 200ms;
    on_strand([&] {
        stream_->expires_at(lifted);
        start_read(first);
        stream_->expires_never();  // during the wait: the waiting read keeps its deadline
    });
    send_one.set_value();
    error_code ec = first.done();
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(first.bytes(), "one");

    PendingRead second;
    std::promise<bool> open_after_lifted;
    asio::steady_timer check(strand_);
    on_strand([&] {
        start_read(second);
        check.expires_at(lifted + 100ms);
        check.async_wait(
            [&](error_code) { open_after_lifted.set_value(stream_->socket().is_open()); });
    });
    auto open = open_after_lifted.get_future();
    ASSERT_EQ(open.wait_for(10s), std::future_status::ready);
    EXPECT_TRUE(open.get());
    send_two.set_value();
    ec = second.done();
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(second.bytes(), "two");
    on_strand([&] { stream_->close(); });
    client.join();
}

TEST_F(TlsStreamTest, PlainTextInsteadOfAClientHelloFailsTheHandshakeWithItsReason) {
    std::thread client(
        [&] { (void)testing::plain_exchange(port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); });
    accept();
    const error_code ec = handshake();
    EXPECT_EQ(ec.category(), asio::error::get_ssl_category());
    EXPECT_NE(ec.message().find("http request"), std::string::npos) << ec.message();
    on_strand([&] { stream_->close(); });  // plain_exchange reads until the server closes
    client.join();
}

}  // namespace
}  // namespace licentra::net
