// audit_append: appends per second and p50/p99 append latency of AuditLog with 1, 8 and 64
// concurrent appenders, beside the naive design (one write + fdatasync per entry) measured in
// the same run on the same file system.
//
// usage: audit_append [--dir DIR] [--seconds S]
//   DIR must be on a real disk (not tmpfs); default: a fresh directory under /var/tmp.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "audit/log.hpp"
#include "bench_cli.hpp"
#include "unit/audit/audit_test_support.hpp"

namespace {

namespace fs = std::filesystem;
using namespace licentra;
using Clock = std::chrono::steady_clock;

struct Stats {
    double rate = 0;
    double p50_us = 0;
    double p99_us = 0;
    std::size_t count = 0;
};

Stats summarize(std::vector<double>& lat_us, double seconds) {
    Stats s;
    s.count = lat_us.size();
    if (lat_us.empty()) return s;
    std::sort(lat_us.begin(), lat_us.end());
    s.rate = static_cast<double>(lat_us.size()) / seconds;
    s.p50_us = lat_us[lat_us.size() / 2];
    s.p99_us = lat_us[std::min(lat_us.size() - 1, lat_us.size() * 99 / 100)];
    return s;
}

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

// The baseline: one serialized entry line written and fdatasync'ed per append.
Stats one_sync_per_entry(const fs::path& dir, double seconds) {
    const fs::path file = dir / "baseline.jsonl";
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        std::perror("open");
        std::exit(1);
    }
    audit::Entry e = audit::testing::sample_entry(0);
    e.time = core::Clock::now();
    const std::string line = *audit::serialize_entry(e) + "\n";
    std::vector<double> lat;
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    while (Clock::now() < end) {
        const auto t0 = Clock::now();
        if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
            ::fdatasync(fd) != 0) {
            std::perror("write/fdatasync");
            std::exit(1);
        }
        lat.push_back(micros(Clock::now() - t0));
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    ::close(fd);
    return summarize(lat, elapsed);
}

Stats group_commit(const fs::path& dir, int appenders, double seconds) {
    audit::testing::OsslEd25519Signer signer;
    audit::LogOptions o = audit::testing::test_options(dir);
    auto log = audit::AuditLog::open(o, {&signer});
    if (!log) {
        std::fprintf(stderr, "open: %s\n", log.error().to_string().c_str());
        std::exit(1);
    }
    std::vector<std::vector<double>> lat(static_cast<std::size_t>(appenders));
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    const auto start = Clock::now();
    for (int t = 0; t < appenders; ++t) {
        threads.emplace_back([&, t] {
            auto& mine = lat[static_cast<std::size_t>(t)];
            for (std::uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
                audit::Entry e = audit::testing::sample_entry(i);
                const auto t0 = Clock::now();
                auto r = (*log)->append(std::move(e));
                if (!r) {
                    std::fprintf(stderr, "append: %s\n", r.error().to_string().c_str());
                    std::exit(1);
                }
                mine.push_back(micros(Clock::now() - t0));
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : threads) th.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    (void)(*log)->close();
    std::vector<double> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    return summarize(all, elapsed);
}

}  // namespace

int main(int argc, char** argv) {
    fs::path base;
    double seconds = 3.0;
    CLI::App app("Audit append throughput and latency: group commit vs one fdatasync per entry",
                 "audit_append");
    app.add_option("--dir", base, "Directory on a real disk (default: a fresh one in /var/tmp)");
    app.add_option("--seconds", seconds, "Seconds per measurement")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    licentra::bench::parse_or_exit(app, argc, argv);
    bool remove = false;
    if (base.empty()) {
        char tmpl[] = "/var/tmp/licentra-audit-bench-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) {
            std::perror("mkdtemp");
            return 1;
        }
        base = tmpl;
        remove = true;
    }
    fs::create_directories(base);

    const Stats baseline = one_sync_per_entry(base, seconds);
    std::printf(
        "| mode | appends/s | p50 µs | p99 µs | × one-sync rate | p99 / one fdatasync (p50) |\n");
    std::printf("| --- | ---: | ---: | ---: | ---: | ---: |\n");
    std::printf("| one fdatasync per entry | %.0f | %.0f | %.0f | 1.0 | %.2f |\n", baseline.rate,
                baseline.p50_us, baseline.p99_us, baseline.p99_us / baseline.p50_us);
    bool rate_ok = false;
    bool p99_ok = false;
    for (int n : {1, 8, 64}) {
        const Stats s = group_commit(base / ("log-" + std::to_string(n)), n, seconds);
        const double ratio = s.rate / baseline.rate;
        const double p99_ratio = s.p99_us / baseline.p50_us;
        std::printf("| AuditLog, %d appender%s | %.0f | %.0f | %.0f | %.1f | %.2f |\n", n,
                    n == 1 ? "" : "s", s.rate, s.p50_us, s.p99_us, ratio, p99_ratio);
        if (n == 64) {
            rate_ok = ratio >= 20.0;
            p99_ok = p99_ratio <= 3.0;
        }
    }
    std::printf(
        "\ntargets at 64 appenders: rate >= 20x one-sync-per-entry: %s; "
        "p99 <= 3x one fdatasync: %s\n",
        rate_ok ? "met" : "NOT met", p99_ok ? "met" : "NOT met");
    if (remove) fs::remove_all(base);
    return 0;
}
