// Crash safety: a child process appends from several threads and reports every acknowledged
// index over a pipe; the parent SIGKILLs it at a random moment. After each of 20 rounds the log
// must open (cutting back a torn record), verify offline, and hold every acknowledged entry.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "audit/log.hpp"
#include "audit/verify.hpp"
#include "audit_test_support.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

struct Ack {
    std::uint64_t index;
    std::uint32_t thread;
    std::uint32_t counter;
};

LogOptions crash_options(const std::filesystem::path& dir) {
    LogOptions o = testing::test_options(dir);
    o.checkpoint_every = 25;
    o.checkpoint_interval = std::chrono::milliseconds(20);
    o.segment_max_bytes = 16 * 1024;
    return o;
}

std::string request_id(int round, std::uint32_t thread, std::uint32_t counter) {
    return "r" + std::to_string(round) + "-t" + std::to_string(thread) + "-" +
           std::to_string(counter);
}

[[noreturn]] void child(int round, const std::filesystem::path& dir,
                        const std::filesystem::path& anchor_path, int out) {
    testing::OsslEd25519Signer signer;
    testing::FileAnchor anchor(anchor_path);
    auto log = AuditLog::open(crash_options(dir), {&signer, &anchor});
    if (!log.ok()) _exit(3);
    std::vector<std::thread> threads;
    for (std::uint32_t t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (std::uint32_t i = 0;; ++i) {
                Entry e = testing::sample_entry(i);
                e.request_id = request_id(round, t, i);
                auto r = (*log)->append(e);
                if (!r.ok()) _exit(4);
                const Ack ack{r->index, t, i};
                // 16 bytes < PIPE_BUF: each report is written atomically.
                if (::write(out, &ack, sizeof ack) != static_cast<ssize_t>(sizeof ack)) _exit(5);
            }
        });
    }
    for (auto& th : threads) th.join();
    _exit(0);
}

TEST(AuditCrash, SigkilledWriterLosesNoAcknowledgedEntryIn20Rounds) {
    test::TempDir tmp;
    const auto dir = tmp.path() / "log";
    const auto anchor_path = tmp.path() / "anchor";
    const unsigned seed = std::random_device{}();
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> delay_ms(5, 150);
    testing::OsslEd25519Signer signer;
    const NoteVerifier verifier =
        *NoteVerifier::from_public_key("licentra.example/audit", signer.public_key());

    std::size_t total_acked = 0;
    int torn = 0;
    for (int round = 0; round < 20; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        int fds[2];
        ASSERT_EQ(::pipe(fds), 0);
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(fds[0]);
            child(round, dir, anchor_path, fds[1]);
        }
        ::close(fds[1]);
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
        ::kill(pid, SIGKILL);
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status))
            << "child exited by itself with " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        std::vector<Ack> acks;
        Ack ack{};
        while (::read(fds[0], &ack, sizeof ack) == static_cast<ssize_t>(sizeof ack)) {
            acks.push_back(ack);
        }
        ::close(fds[0]);
        total_acked += acks.size();

        testing::FileAnchor anchor(anchor_path);
        {
            auto log = AuditLog::open(crash_options(dir), {&signer, &anchor});
            ASSERT_TRUE(log.ok()) << log.error().to_string();
            if ((*log)->recovery().torn_log || (*log)->recovery().torn_checkpoint) ++torn;
            for (const Ack& a : acks) {
                ASSERT_LT(a.index, (*log)->size());
                auto line = (*log)->read_entries(a.index, a.index + 1);
                ASSERT_TRUE(line.ok());
                auto e = parse_entry(line->at(0));
                ASSERT_TRUE(e.ok());
                EXPECT_EQ(e->request_id, request_id(round, a.thread, a.counter));
            }
            ASSERT_TRUE((*log)->close().ok());
        }
        VerifyOptions vo;
        vo.dir = dir;
        vo.trusted_checkpoint = *anchor.load().value();
        const VerifyReport report = verify_log_directory(vo, verifier);
        ASSERT_EQ(report.status, VerifyStatus::verified) << report.finding->to_error().to_string();
    }
    EXPECT_GT(total_acked, 0u);
    std::cout << "[ info ] " << total_acked << " acknowledged appends across 20 kills, " << torn
              << " torn records repaired\n";
}

}  // namespace
}  // namespace licentra::audit
