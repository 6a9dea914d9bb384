// sign_load_handoff: the cost of handing a request from an io_context strand to net::WorkPool
// and posting the result back to the strand (the path every HSM call takes in the daemon),
// compared with staying on the strand.
//
//   sign_load_handoff [--iterations N] [--pool-threads T] [--chains C]
//
// "sequential": one chain, each completion starts the next hand-off: round-trip latency.
// "concurrent": C chains at once on C strands over 2 io threads: hand-offs per second.
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_cli.hpp"
#include "net/work_pool.hpp"

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

struct Chain : std::enable_shared_from_this<Chain> {
    Chain(asio::io_context& ioc, licentra::net::WorkPool* work_pool, std::size_t n,
          std::function<void()> on_finished)
        : strand(asio::make_strand(ioc)),
          pool(work_pool),
          remaining(n),
          finished(std::move(on_finished)) {}

    void step() {
        if (remaining-- == 0) {
            finished();
            return;
        }
        if (pool == nullptr) {
            // Baseline: post back to the strand without leaving the io threads.
            asio::post(strand, [self = shared_from_this()] { self->step(); });
            return;
        }
        // What a Handler does: blocking work on the pool, then `done` posts to the strand.
        const bool queued = pool->post(
            [self = shared_from_this()] { asio::post(self->strand, [self] { self->step(); }); });
        if (!queued) std::abort();
    }

    asio::strand<asio::io_context::executor_type> strand;
    licentra::net::WorkPool* pool;
    std::size_t remaining;
    std::function<void()> finished;
};

double run(licentra::net::WorkPool* pool, std::size_t chains, std::size_t per_chain,
           unsigned io_threads) {
    asio::io_context ioc(static_cast<int>(io_threads));
    auto guard = asio::make_work_guard(ioc);
    std::atomic<std::size_t> done{0};
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < io_threads; ++i) threads.emplace_back([&] { ioc.run(); });
    const auto t0 = Clock::now();
    for (std::size_t c = 0; c < chains; ++c) {
        auto chain = std::make_shared<Chain>(ioc, pool, per_chain, [&] {
            if (done.fetch_add(1) + 1 == chains) guard.reset();
        });
        asio::post(chain->strand, [chain] { chain->step(); });
    }
    for (auto& t : threads) t.join();
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return seconds;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t iterations = 200000;
    std::size_t pool_threads = 2;
    std::size_t chains = 64;
    CLI::App app("The io_context -> WorkPool -> strand hand-off cost", "sign_load_handoff");
    app.add_option("--iterations", iterations, "Hand-offs per measurement")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000'000}))
        ->capture_default_str();
    app.add_option("--pool-threads", pool_threads, "Work pool threads")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1024}))
        ->capture_default_str();
    app.add_option("--chains", chains, "Concurrent chains")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
        ->capture_default_str();
    licentra::bench::parse_or_exit(app, argc, argv);
    licentra::net::WorkPool pool(pool_threads);

    const double base_seq = run(nullptr, 1, iterations, 1);
    const double pool_seq = run(&pool, 1, iterations, 1);
    std::printf("sequential round trip (1 io thread, %zu pool threads, %zu iterations)\n",
                pool_threads, iterations);
    std::printf("  strand only           %8.3f us/op\n", base_seq * 1e6 / double(iterations));
    std::printf("  strand->pool->strand  %8.3f us/op\n", pool_seq * 1e6 / double(iterations));

    const std::size_t per_chain = iterations / chains;
    const double base_par = run(nullptr, chains, per_chain, 2);
    const double pool_par = run(&pool, chains, per_chain, 2);
    const double total = double(per_chain * chains);
    std::printf("concurrent (%zu chains, 2 io threads, %zu pool threads)\n", chains, pool_threads);
    std::printf("  strand only           %10.0f ops/s\n", total / base_par);
    std::printf("  strand->pool->strand  %10.0f ops/s  (%.3f us of CPU-time budget per op)\n",
                total / pool_par, pool_par * 1e6 / total);
    return 0;
}
