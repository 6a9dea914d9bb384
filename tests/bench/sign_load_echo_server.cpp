// sign_load_echo_server: net::Server with a trivial handler, to measure the network layer alone
// (TLS 1.3 + HTTP/1.1 + optional WorkPool hand-off) with sign_load, before the daemon exists.
//
//   sign_load_echo_server --cert C --key K --ca CA [--port 8443] [--threads 2] [--pool N]
// Runs until SIGINT/SIGTERM; prints the port on stdout.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "bench_cli.hpp"
#include "net/server.hpp"
#include "net/signals.hpp"
#include "net/work_pool.hpp"

namespace net = licentra::net;

int main(int argc, char** argv) {
    std::string cert, key, ca;
    unsigned port = 8443, threads = 2, pool_threads = 0;
    CLI::App app("mTLS echo server for sign_load (no daemon behind it)", "sign_load_echo_server");
    app.add_option("--cert", cert, "Server certificate (PEM)")->required();
    app.add_option("--key", key, "Server private key (PEM)")->required();
    app.add_option("--ca", ca, "Client CA (PEM)")->required();
    app.add_option("--port", port, "TCP port")
        ->check(CLI::Range(1U, 65535U))
        ->capture_default_str();
    app.add_option("--threads", threads, "io_context threads")
        ->check(CLI::Range(1U, 1024U))
        ->capture_default_str();
    app.add_option("--pool", pool_threads, "Work pool threads (0: none)")->capture_default_str();
    licentra::bench::parse_or_exit(app, argc, argv);
    if (!net::block_signals()) return 1;
    std::unique_ptr<net::WorkPool> pool;
    if (pool_threads > 0) pool = std::make_unique<net::WorkPool>(pool_threads);
    auto handler = std::make_shared<net::FunctionHandler>(
        [&pool](net::Request r, std::function<void(net::Response)> done) {
            net::Response res;
            res.status = 201;
            res.content_type = "application/json";
            res.body =
                "{\"token\":\"x\",\"kid\":\"k\",\"bytes\":" + std::to_string(r.body.size()) + "}";
            if (pool) {
                if (!pool->post([done, res] { done(res); })) {
                    done(net::problem_response(net::ProblemKind::overloaded, "queue full",
                                               r.request_id));
                }
                return;
            }
            done(std::move(res));
        });
    net::ServerOptions options;
    options.api = {"127.0.0.1", static_cast<std::uint16_t>(port)};
    options.ops.reset();
    options.tls = {cert, key, ca};
    options.io_threads = threads;
    auto server = net::Server::create(options, handler, nullptr);
    if (!server) {
        std::cerr << server.error().to_string() << "\n";
        return 1;
    }
    if (!(*server)->start().ok()) return 1;
    std::printf("%u\n", (*server)->api_port());
    std::fflush(stdout);
    for (;;) {
        const int sig = net::wait_for_signal();
        if (sig != SIGHUP) break;
        auto s = (*server)->reload_tls(options.tls);
        std::cerr << (s.ok() ? "reloaded" : s.error().to_string()) << "\n";
    }
    (*server)->stop(std::chrono::seconds(5));
    return 0;
}
