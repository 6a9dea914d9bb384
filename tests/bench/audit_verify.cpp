// audit_verify: wall time and peak RSS of `licentra audit verify` on generated logs.
//
// For each size, writes a log through the real AuditLog writer (Ed25519 checkpoint key in
// software, a checkpoint every 1000 entries, 64 MiB segments; one lifecycle execution every
// 10,000 entries so the cross-check facts are not empty), then runs the licentra binary on it
// once per run and reports wall time, CPU time (user + system) and maximum RSS (wait4 rusage)
// of each run.
//
// usage: audit_verify [--dir DIR] [--sizes N,N,...] [--runs R] [--licentra PATH] [--keep]
//   DIR: where the logs are written (default: a fresh directory under /var/tmp, removed at the
//   end unless --keep). A log already present in DIR/log-<N> (with DIR/log-<N>.vkey) is reused.
//   Defaults: --sizes 100000,1000000 --runs 3 --licentra the licentra built with this benchmark.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <semaphore>
#include <string>
#include <vector>

#include "audit/log.hpp"
#include "bench_cli.hpp"
#include "crypto/digest.hpp"
#include "unit/audit/audit_test_support.hpp"

#ifndef LICENTRA_CLI_PATH
#define LICENTRA_CLI_PATH "licentra"
#endif

namespace {

namespace fs = std::filesystem;
using namespace licentra;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "audit_verify: %s\n", what.c_str());
    std::exit(1);
}

// Writes n entries to dir through AuditLog and the verifier key to vkey.
void generate(const fs::path& dir, const fs::path& vkey, std::uint64_t n) {
    audit::testing::OsslEd25519Signer signer;
    audit::LogOptions o = audit::testing::test_options(dir);
    o.checkpoint_every = 1000;
    auto log = audit::AuditLog::open(o, {&signer});
    if (!log) die("open: " + log.error().to_string());
    // Keep well below max_pending so no append is refused with audit.queue_full.
    std::counting_semaphore<> slots(16384);
    std::atomic<bool> failed{false};
    for (std::uint64_t i = 0; i < n; ++i) {
        audit::Entry e = audit::testing::sample_entry(i);
        if (i % 10'000 == 9'999) {
            e = audit::Entry{};
            e.principal = "officer-1";
            e.action = "key.rotate.execute";
            e.result = audit::Outcome::allowed;
            e.key = "acme-prod";
            e.request_id = "apr-" + std::to_string(i);
            e.request_digest = core::hex_encode(crypto::sha256(core::as_bytes(std::to_string(i))));
        }
        slots.acquire();
        (*log)->append_async(std::move(e), [&](core::Result<audit::Appended> r) {
            if (!r) failed = true;
            slots.release();
        });
    }
    if (auto st = (*log)->close(); !st) die("close: " + st.error().to_string());
    if (failed) die("an append failed");
    std::ofstream(vkey) << (*log)->verifier().to_string() << "\n";
}

struct Run {
    double seconds = 0;
    double cpu_seconds = 0;  // user + system
    long max_rss_kib = 0;
    int exit_code = -1;
};

Run run_verify(const std::string& cli, const fs::path& dir, const fs::path& vkey) {
    const std::string d = dir.string();
    const std::string k = vkey.string();
    std::vector<const char*> argv = {cli.c_str(), "audit", "verify",  "--dir",
                                     d.c_str(),   "--key", k.c_str(), nullptr};
    const auto t0 = Clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) die("fork failed");
    if (pid == 0) {
        const int null = ::open("/dev/null", O_WRONLY);
        if (null >= 0) ::dup2(null, STDOUT_FILENO);
        ::execv(argv[0], const_cast<char* const*>(argv.data()));
        std::_Exit(127);
    }
    int status = 0;
    struct rusage ru {};
    if (::wait4(pid, &status, 0, &ru) != pid) die("wait4 failed");
    Run r;
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.max_rss_kib = ru.ru_maxrss;
    auto secs = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    r.cpu_seconds = secs(ru.ru_utime) + secs(ru.ru_stime);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::uint64_t dir_bytes(const fs::path& dir) {
    std::uint64_t total = 0;
    for (const auto& e : fs::directory_iterator(dir)) {
        if (e.is_regular_file()) total += e.file_size();
    }
    return total;
}

}  // namespace

int main(int argc, char** argv) {
    fs::path base;
    std::vector<std::uint64_t> sizes = {100'000, 1'000'000};
    int runs = 3;
    std::string cli = LICENTRA_CLI_PATH;
    bool keep = false;
    CLI::App app("Wall time and peak RSS of `licentra audit verify` on generated logs",
                 "audit_verify");
    app.add_option("--dir", base,
                   "Directory for the logs (default: a fresh one in /var/tmp, removed at the end "
                   "unless --keep)");
    app.add_option("--sizes", sizes, "Log sizes in entries, comma-separated")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--runs", runs, "Runs per size")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app.add_option("--licentra", cli, "The licentra binary")->capture_default_str();
    app.add_flag("--keep", keep, "Keep the generated logs");
    licentra::bench::parse_or_exit(app, argc, argv);
    bool remove = false;
    if (base.empty()) {
        char tmpl[] = "/var/tmp/licentra-verify-bench-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) die("mkdtemp failed");
        base = tmpl;
        remove = !keep;
    }
    fs::create_directories(base);

    std::printf("licentra: %s\n\n", cli.c_str());
    std::printf("| entries | log MiB | run | wall s | CPU s | max RSS MiB | exit |\n");
    std::printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    bool targets_met = true;
    for (const std::uint64_t n : sizes) {
        const fs::path dir = base / ("log-" + std::to_string(n));
        const fs::path vkey = base / ("log-" + std::to_string(n) + ".vkey");
        if (!fs::exists(vkey)) {
            const auto t0 = Clock::now();
            generate(dir, vkey, n);
            std::fprintf(stderr, "generated %llu entries in %.1f s\n",
                         static_cast<unsigned long long>(n),
                         std::chrono::duration<double>(Clock::now() - t0).count());
        }
        const double mib = static_cast<double>(dir_bytes(dir)) / (1024.0 * 1024.0);
        for (int r = 1; r <= runs; ++r) {
            const Run run = run_verify(cli, dir, vkey);
            std::printf("| %llu | %.0f | %d | %.2f | %.2f | %.1f | %d |\n",
                        static_cast<unsigned long long>(n), mib, r, run.seconds, run.cpu_seconds,
                        static_cast<double>(run.max_rss_kib) / 1024.0, run.exit_code);
            std::fflush(stdout);
            if (run.exit_code != 0) targets_met = false;
            if (run.max_rss_kib >= 64 * 1024) targets_met = false;
            if (n >= 1'000'000 && run.seconds > 5.0 * static_cast<double>(n) / 1e6) {
                targets_met = false;
            }
        }
    }
    std::printf("\ntargets (exit 0, RSS < 64 MiB, <= 5 s per million entries): %s\n",
                targets_met ? "met" : "NOT met");
    if (remove) fs::remove_all(base);
    return 0;
}
