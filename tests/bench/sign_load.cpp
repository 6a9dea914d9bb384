// sign_load: an Asio load client for licentra-signd's mTLS API.
//
// N keep-alive TLS 1.3 connections with a client certificate, M requests in flight in total
// (spread over the connections; more than one per connection is HTTP/1.1 pipelining, which
// the server answers in order), for a fixed duration after a warm-up. Reports requests per
// second and latency percentiles (p50, p99, p99.9) from send to the last byte of the response.
//
// --rate R paces the load instead (open loop): each connection sends at fixed intervals so that
// all together send R requests/s, each connection starting at a different phase; latency is
// measured from the time a request was due, so a request delayed by a full pipeline counts its
// wait (no coordinated omission).
//
// --hold N opens N connections instead (at most 32 handshakes at a time), sends one request on
// each, keeps them all open and idle, and with --rss-pid PID reports that process's VmRSS (from
// /proc/PID/status) once all N are established and idle, then closes them.
//
//   sign_load --url https://127.0.0.1:8443/v1/tokens --cert C --key K --ca CA
//             [--body-file F | --body TEXT] [--method POST] [--content-type application/json]
//             [--connections 16] [--inflight 16] [--duration 10] [--warmup 1] [--threads 1]
//             [--rate R] [--hold N [--rss-pid PID] [--settle S]] [--json]
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_cli.hpp"
#include "net/client.hpp"
#include "net/tls.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
namespace net = licentra::net;

namespace {

struct Options {
    std::string url;
    std::string method = "POST";
    std::string content_type = "application/json";
    std::string body;
    std::string cert, key, ca;
    unsigned connections = 16;
    unsigned inflight = 16;
    double duration_s = 10;
    double warmup_s = 1;
    unsigned threads = 1;
    double rate = 0;       // requests/s over all connections; 0 = closed loop
    unsigned hold = 0;     // hold mode: connections to open and keep idle
    unsigned rss_pid = 0;  // hold mode: process whose VmRSS to report
    double settle_s = 1;   // hold mode: idle time before reading VmRSS
    bool json = false;
};

// Shared between connections; each connection merges its samples at the end.
struct Totals {
    std::mutex mutex;
    std::vector<std::uint32_t> latencies_us;
    std::map<unsigned, std::uint64_t> statuses;
    std::uint64_t errors = 0;
    std::uint64_t connect_failures = 0;
};

struct Run {
    std::atomic<bool> running{true};
    Clock::time_point measure_from;
    Clock::time_point measure_to;
    // Paced mode: the interval between two requests of one connection (zero = closed loop).
    Clock::duration interval{0};
    // Hold mode: each connection sends one request and then calls this (success or not).
    bool hold = false;
    std::function<void(bool ok)> on_held;
};

class Connection : public std::enable_shared_from_this<Connection> {
  public:
    Connection(asio::io_context& ioc, ssl::context& ctx, const net::Endpoint& ep,
               std::shared_ptr<const http::request<http::string_body>> request, unsigned depth,
               Run& run, Totals& totals, Clock::duration phase = {})
        : stream_(asio::make_strand(ioc), ctx),
          pace_(stream_.get_executor()),
          phase_(phase),
          endpoint_(ep),
          request_(std::move(request)),
          depth_(depth),
          run_(run),
          totals_(totals) {}

    void start(const tcp::resolver::results_type& endpoints) {
        SSL* s = stream_.native_handle();
        beast::error_code ec;
        asio::ip::make_address(endpoint_.host, ec);
        if (ec) {
            SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(endpoint_.host.c_str()));
            SSL_set1_host(s, endpoint_.host.c_str());
        } else {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), endpoint_.host.c_str());
        }
        beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(10));
        beast::get_lowest_layer(stream_).async_connect(
            endpoints, beast::bind_front_handler(&Connection::on_connect, shared_from_this()));
    }

    void stop() {
        asio::post(stream_.get_executor(), [self = shared_from_this()] {
            beast::error_code ec;
            self->pace_.cancel();
            beast::get_lowest_layer(self->stream_).socket().close(ec);
        });
    }

    void merge() {
        std::lock_guard lock(totals_.mutex);
        totals_.latencies_us.insert(totals_.latencies_us.end(), latencies_.begin(),
                                    latencies_.end());
        for (auto& [k, v] : statuses_) totals_.statuses[k] += v;
        totals_.errors += errors_;
        if (!connected_) ++totals_.connect_failures;
    }

  private:
    void on_connect(beast::error_code ec, const tcp::endpoint&) {
        if (ec) return fail(ec);
        beast::get_lowest_layer(stream_).socket().set_option(tcp::no_delay(true));
        stream_.async_handshake(
            ssl::stream_base::client,
            beast::bind_front_handler(&Connection::on_handshake, shared_from_this()));
    }

    void on_handshake(beast::error_code ec) {
        if (ec) return fail(ec);
        connected_ = true;
        beast::get_lowest_layer(stream_).expires_never();
        if (run_.interval > Clock::duration::zero()) {
            next_due_ = Clock::now() + phase_;
            schedule();
        } else {
            do_write();
        }
        do_read();
    }

    // Paced mode: one request becomes due every interval.
    void schedule() {
        pace_.expires_at(next_due_);
        pace_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (ec || !self->run_.running.load()) return;
            self->due_.push_back(self->next_due_);
            self->next_due_ += self->run_.interval;
            self->schedule();
            self->do_write();
        });
    }

    void do_write() {
        if (writing_ || sent_.size() >= depth_ || !run_.running.load()) return;
        if (run_.hold && requests_sent_ > 0) return;
        Clock::time_point due = Clock::now();
        if (run_.interval > Clock::duration::zero()) {
            if (due_.empty()) return;
            due = due_.front();
            due_.pop_front();
        }
        writing_ = true;
        ++requests_sent_;
        sent_.push_back(due);
        http::async_write(stream_, *request_,
                          beast::bind_front_handler(&Connection::on_write, shared_from_this()));
    }

    void on_write(beast::error_code ec, std::size_t) {
        writing_ = false;
        if (ec) return fail(ec);
        do_write();
    }

    void do_read() {
        parser_.emplace();
        parser_->body_limit(1 << 20);
        http::async_read(stream_, buffer_, *parser_,
                         beast::bind_front_handler(&Connection::on_read, shared_from_this()));
    }

    void on_read(beast::error_code ec, std::size_t) {
        if (ec) return fail(ec);
        const auto now = Clock::now();
        const auto sent = sent_.front();
        sent_.pop_front();
        if (run_.hold || (sent >= run_.measure_from && now <= run_.measure_to)) {
            latencies_.push_back(static_cast<std::uint32_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(now - sent).count()));
            ++statuses_[parser_->get().result_int()];
        }
        if (!parser_->get().keep_alive()) return fail(http::error::end_of_stream);
        if (run_.hold) {
            // Keep the connection open and idle; drop the client's own read state too.
            parser_.reset();
            buffer_ = beast::flat_buffer();
            held_ = true;
            run_.on_held(true);
            do_idle_read();
            return;
        }
        do_write();
        if (run_.running.load() || !sent_.empty()) do_read();
    }

    // Hold mode: notice (and count) a server that closes a held connection.
    void do_idle_read() {
        stream_.async_read_some(asio::buffer(idle_byte_),
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    if (self->run_.running.load()) {
                                        ++self->dropped_;
                                        self->fail(ec ? ec : http::error::end_of_stream);
                                    }
                                });
    }

    void fail(beast::error_code ec) {
        if (run_.running.load() && ec != asio::error::operation_aborted) ++errors_;
        beast::error_code ignored;
        pace_.cancel();
        beast::get_lowest_layer(stream_).socket().close(ignored);
        if (run_.hold && !held_ && !reported_) {
            reported_ = true;
            run_.on_held(false);
        }
    }

  public:
    std::uint64_t dropped() const { return dropped_; }

  private:
    beast::ssl_stream<beast::tcp_stream> stream_;
    asio::steady_timer pace_;
    Clock::duration phase_;
    Clock::time_point next_due_;
    std::deque<Clock::time_point> due_;
    std::uint64_t requests_sent_ = 0;
    bool held_ = false;
    bool reported_ = false;
    std::uint64_t dropped_ = 0;
    char idle_byte_[1] = {};
    net::Endpoint endpoint_;
    std::shared_ptr<const http::request<http::string_body>> request_;
    unsigned depth_;
    Run& run_;
    Totals& totals_;
    beast::flat_buffer buffer_;
    std::optional<http::response_parser<http::string_body>> parser_;
    std::deque<Clock::time_point> sent_;
    bool writing_ = false;
    bool connected_ = false;
    std::vector<std::uint32_t> latencies_;
    std::map<unsigned, std::uint64_t> statuses_;
    std::uint64_t errors_ = 0;
};

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "sign_load: " << why << "\nRun sign_load --help for usage.\n";
    std::exit(2);
}

// VmRSS and VmHWM of a process in KiB (0 if unreadable).
std::pair<unsigned long, unsigned long> read_rss_kib(unsigned pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    unsigned long rss = 0, hwm = 0;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) rss = std::stoul(line.substr(6));
        if (line.rfind("VmHWM:", 0) == 0) hwm = std::stoul(line.substr(6));
    }
    return {rss, hwm};
}

void raise_nofile(std::uint64_t wanted) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < wanted) {
        rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, static_cast<rlim_t>(wanted));
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

Options parse(int argc, char** argv) {
    Options o;
    CLI::App app("mTLS load client for licentra-signd (closed loop, --rate paced, or --hold)",
                 "sign_load");
    std::string body_file;
    app.add_option("--url", o.url, "https://HOST:PORT/PATH")->required();
    app.add_option("--cert", o.cert, "Client certificate (PEM)")->required();
    app.add_option("--key", o.key, "Client private key (PEM)")->required();
    app.add_option("--ca", o.ca, "CA of the server certificate (PEM)")->required();
    auto* body = app.add_option("--body", o.body, "Request body");
    app.add_option("--body-file", body_file, "Request body from a file")
        ->check(CLI::ExistingFile)
        ->excludes(body);
    app.add_option("--method", o.method, "HTTP method")->capture_default_str();
    app.add_option("--content-type", o.content_type, "Content-Type")->capture_default_str();
    const auto count = CLI::Range(1U, 1'000'000U);
    const auto seconds = CLI::Range(0.0, 86400.0);
    app.add_option("--connections", o.connections, "Connections")
        ->check(count)
        ->capture_default_str();
    app.add_option("--inflight", o.inflight, "Requests in flight over all connections")
        ->check(count)
        ->capture_default_str();
    app.add_option("--duration", o.duration_s, "Measured seconds")
        ->check(seconds)
        ->capture_default_str();
    app.add_option("--warmup", o.warmup_s, "Warm-up seconds")
        ->check(seconds)
        ->capture_default_str();
    app.add_option("--threads", o.threads, "io_context threads")
        ->check(count)
        ->capture_default_str();
    app.add_option("--rate", o.rate, "Open loop: requests per second over all connections")
        ->check(CLI::PositiveNumber & CLI::Range(0.0, 10'000'000.0));
    app.add_option("--hold", o.hold, "Open N connections and keep them idle")->check(count);
    app.add_option("--rss-pid", o.rss_pid, "--hold: report this process's VmRSS")->check(count);
    app.add_option("--settle", o.settle_s, "--hold: idle seconds before reading VmRSS")
        ->check(seconds)
        ->capture_default_str();
    app.add_flag("--json", o.json, "Print the result as JSON");
    licentra::bench::parse_or_exit(app, argc, argv);
    if (!body_file.empty()) {
        std::ifstream in(body_file, std::ios::binary);
        if (!in) usage("cannot read " + body_file);
        std::ostringstream ss;
        ss << in.rdbuf();
        o.body = ss.str();
    }
    if (o.inflight < o.connections) o.connections = o.inflight;
    if (o.hold > 0) o.threads = 1;  // hold mode's bookkeeping is single-threaded
    return o;
}

double percentile(const std::vector<std::uint32_t>& sorted, double p) {
    if (sorted.empty()) return 0;
    const auto idx = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
    return static_cast<double>(sorted[std::min(idx, sorted.size() - 1)]) / 1000.0;
}

// Hold mode: open o.hold connections (at most kHandshakeWindow handshakes at a time), one request
// on each, keep them idle, read the server's memory, close them.
int run_hold(const Options& o, asio::io_context& ioc, ssl::context& ctx,
             const net::Endpoint& endpoint, const tcp::resolver::results_type& endpoints,
             const std::shared_ptr<const http::request<http::string_body>>& request) {
    constexpr unsigned kHandshakeWindow = 32;
    raise_nofile(o.hold + 64);
    const auto before = o.rss_pid != 0 ? read_rss_kib(o.rss_pid) : std::pair{0UL, 0UL};
    Run run;
    Totals totals;
    run.hold = true;
    run.measure_from = Clock::now();
    run.measure_to = Clock::time_point::max();
    std::vector<std::shared_ptr<Connection>> connections;
    unsigned in_progress = 0, held = 0, failed = 0;
    std::pair<unsigned long, unsigned long> rss{0, 0};
    const auto start = Clock::now();
    double open_s = 0;
    asio::steady_timer settle(ioc);

    std::function<void()> launch = [&] {
        while (in_progress < kHandshakeWindow && connections.size() < o.hold) {
            ++in_progress;
            connections.push_back(
                std::make_shared<Connection>(ioc, ctx, endpoint, request, 1, run, totals));
            connections.back()->start(endpoints);
        }
    };
    run.on_held = [&](bool ok) {
        --in_progress;
        ++(ok ? held : failed);
        launch();
        if (in_progress > 0 || connections.size() < o.hold) return;
        open_s = std::chrono::duration<double>(Clock::now() - start).count();
        settle.expires_after(
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.settle_s)));
        settle.async_wait([&](beast::error_code) {
            if (o.rss_pid != 0) rss = read_rss_kib(o.rss_pid);
            run.running.store(false);
            for (auto& c : connections) c->stop();
        });
    };
    // Single-threaded on purpose: the callbacks above share plain counters.
    asio::post(ioc, launch);
    ioc.run();
    std::uint64_t dropped = 0;
    for (auto& c : connections) {
        c->merge();
        dropped += c->dropped();
    }
    std::uint64_t ok = 0;
    for (auto& [status, n] : totals.statuses) {
        if (status >= 200 && status < 300) ok += n;
    }
    if (o.json) {
        std::printf(
            "{\"hold\":%u,\"held\":%u,\"failed\":%u,\"dropped\":%llu,\"ok\":%llu,"
            "\"open_s\":%.2f,\"rss_before_kib\":%lu,\"rss_kib\":%lu,\"hwm_kib\":%lu}\n",
            o.hold, held, failed, static_cast<unsigned long long>(dropped),
            static_cast<unsigned long long>(ok), open_s, before.first, rss.first, rss.second);
    } else {
        std::printf(
            "held         %u of %u connections (%u failed, %llu dropped while idle), "
            "%llu 2xx, opened in %.2f s\n",
            held, o.hold, failed, static_cast<unsigned long long>(dropped),
            static_cast<unsigned long long>(ok), open_s);
        if (o.rss_pid != 0) {
            std::printf(
                "server RSS   %lu KiB before, %lu KiB with the connections open "
                "(peak %lu KiB)\n",
                before.first, rss.first, rss.second);
        }
    }
    return held == o.hold && dropped == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);

    // Split the URL into server and path: https://host:port/path
    std::string server = o.url;
    std::string path = "/";
    if (const auto scheme = server.find("://"); scheme != std::string::npos) {
        if (const auto slash = server.find('/', scheme + 3); slash != std::string::npos) {
            path = server.substr(slash);
            server = server.substr(0, slash);
        }
    }
    auto endpoint = net::parse_server_url(server);
    if (!endpoint) usage(endpoint.error().message);
    auto ctx = net::make_client_context({o.ca, o.cert, o.key});
    if (!ctx) {
        std::cerr << "sign_load: " << ctx.error().to_string() << "\n";
        return 1;
    }

    auto request = std::make_shared<http::request<http::string_body>>();
    const http::verb verb = http::string_to_verb(o.method);
    if (verb == http::verb::unknown) usage("unknown method " + o.method);
    request->method(verb);
    request->target(path);
    request->version(11);
    request->set(http::field::host, endpoint->host + ":" + std::to_string(endpoint->port));
    if (!o.body.empty()) request->set(http::field::content_type, o.content_type);
    request->body() = o.body;
    request->keep_alive(true);
    request->prepare_payload();

    asio::io_context ioc(static_cast<int>(o.threads));
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    const auto endpoints = resolver.resolve(endpoint->host, std::to_string(endpoint->port), ec);
    if (ec) {
        std::cerr << "sign_load: cannot resolve " << endpoint->host << ": " << ec.message() << "\n";
        return 1;
    }

    if (o.hold > 0) return run_hold(o, ioc, *ctx.value(), *endpoint, endpoints, request);

    Run run;
    Totals totals;
    const auto start = Clock::now();
    run.measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(o.warmup_s));
    run.measure_to = run.measure_from + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(o.duration_s));
    if (o.rate > 0) {
        run.interval = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(static_cast<double>(o.connections) / o.rate));
    }

    std::vector<std::shared_ptr<Connection>> connections;
    for (unsigned i = 0; i < o.connections; ++i) {
        // Spread M in flight over N connections: the first M % N get one more.
        const unsigned depth = o.inflight / o.connections + (i < o.inflight % o.connections);
        // Paced: connection i starts i/N of an interval late, so sends are spread evenly.
        const Clock::duration phase = run.interval * i / o.connections;
        connections.push_back(std::make_shared<Connection>(ioc, *ctx.value(), *endpoint, request,
                                                           depth, run, totals, phase));
        connections.back()->start(endpoints);
    }

    asio::steady_timer end_timer(ioc, run.measure_to);
    end_timer.async_wait([&](beast::error_code) {
        run.running.store(false);
        // Let in-flight responses arrive, then close everything.
        auto grace = std::make_shared<asio::steady_timer>(ioc, std::chrono::seconds(2));
        grace->async_wait([&, grace](beast::error_code) {
            for (auto& c : connections) c->stop();
        });
    });

    std::vector<std::thread> threads;
    for (unsigned i = 1; i < o.threads; ++i) threads.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : threads) t.join();
    for (auto& c : connections) c->merge();

    auto& lat = totals.latencies_us;
    std::sort(lat.begin(), lat.end());
    const double rps = static_cast<double>(lat.size()) / o.duration_s;
    std::uint64_t ok = 0;
    for (auto& [status, n] : totals.statuses) {
        if (status >= 200 && status < 300) ok += n;
    }
    const double p50 = percentile(lat, 0.50), p99 = percentile(lat, 0.99),
                 p999 = percentile(lat, 0.999);
    if (o.json) {
        std::printf(
            "{\"requests\":%zu,\"ok\":%llu,\"errors\":%llu,\"connect_failures\":%llu,"
            "\"duration_s\":%.3f,\"rps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
            "\"p999_ms\":%.3f,\"connections\":%u,\"inflight\":%u,\"ok_rps\":%.1f,"
            "\"target_rate\":%.1f}\n",
            lat.size(), static_cast<unsigned long long>(ok),
            static_cast<unsigned long long>(totals.errors),
            static_cast<unsigned long long>(totals.connect_failures), o.duration_s, rps, p50, p99,
            p999, o.connections, o.inflight, static_cast<double>(ok) / o.duration_s, o.rate);
    } else {
        std::printf("url          %s %s\n", o.method.c_str(), o.url.c_str());
        std::printf("connections  %u, in flight %u, duration %.1f s (+%.1f s warm-up)\n",
                    o.connections, o.inflight, o.duration_s, o.warmup_s);
        if (o.rate > 0) std::printf("paced        %.1f requests/s (open loop)\n", o.rate);
        std::printf("requests     %zu (2xx %llu), errors %llu, connect failures %llu\n", lat.size(),
                    static_cast<unsigned long long>(ok),
                    static_cast<unsigned long long>(totals.errors),
                    static_cast<unsigned long long>(totals.connect_failures));
        for (auto& [status, n] : totals.statuses) {
            std::printf("  status %u: %llu\n", status, static_cast<unsigned long long>(n));
        }
        std::printf("throughput   %.1f requests/s\n", rps);
        std::printf("latency ms   p50 %.3f  p99 %.3f  p99.9 %.3f\n", p50, p99, p999);
    }
    return totals.connect_failures == o.connections ? 1 : 0;
}
