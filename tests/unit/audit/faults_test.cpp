// Disk and HSM faults as the audit log meets them: a sync past its deadline, the operational
// log lines that report failures (once per kind per period) and their recovery.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "audit/log.hpp"
#include "audit/verify.hpp"
#include "audit_test_support.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::sample_entry;

// fdatasync blocks while `hold` is set, until release(); everything else is the real call.
class BlockingFileOps final : public FileOps {
  public:
    ssize_t write(int fd, const void* data, std::size_t size) override {
        return ::write(fd, data, size);
    }
    int fdatasync(int fd) override {
        wait_while_held();
        return ::fdatasync(fd);
    }
    int fsync(int fd) override {
        wait_while_held();
        return ::fsync(fd);
    }
    void hold() {
        std::lock_guard lk(mu_);
        hold_ = true;
    }
    void release() {
        {
            std::lock_guard lk(mu_);
            hold_ = false;
        }
        cv_.notify_all();
    }
    // Waits until a sync is blocked (bounded).
    bool wait_blocked(std::chrono::milliseconds bound) {
        std::unique_lock lk(mu_);
        return cv_.wait_for(lk, bound, [&] { return blocked_ > 0; });
    }

  private:
    void wait_while_held() {
        std::unique_lock lk(mu_);
        if (hold_) {
            ++blocked_;
            cv_.notify_all();
            cv_.wait(lk, [&] { return !hold_; });
        }
    }

    std::mutex mu_;
    std::condition_variable cv_;
    bool hold_ = false;
    int blocked_ = 0;
};

// Collects the operational log lines.
struct Lines {
    std::function<void(std::string_view)> sink() {
        return [this](std::string_view line) {
            std::lock_guard lk(mu);
            lines.emplace_back(line);
        };
    }
    std::size_t count(std::string_view needle) {
        std::lock_guard lk(mu);
        std::size_t n = 0;
        for (const auto& l : lines) n += l.find(needle) != std::string::npos ? 1 : 0;
        return n;
    }
    std::string all() {
        std::lock_guard lk(mu);
        std::string out;
        for (const auto& l : lines) out += l + "\n";
        return out;
    }
    std::mutex mu;
    std::vector<std::string> lines;
};

class AuditFaultsTest : public ::testing::Test {
  protected:
    core::Result<std::unique_ptr<AuditLog>> open(LogOptions o, FileOps* ops) {
        return AuditLog::open(std::move(o), {&signer_, &anchor_, ops, lines_.sink()});
    }
    LogOptions options() { return testing::test_options(tmp_.path() / "log"); }
    void late_sync_fails_the_append_then_recovers(std::uint64_t segment_max_bytes);
    NoteVerifier verifier() {
        return *NoteVerifier::from_public_key("licentra.example/audit", signer_.public_key());
    }

    test::TempDir tmp_;
    testing::OsslEd25519Signer signer_;
    testing::MemoryAnchor anchor_;
    Lines lines_;
};

// One append meets a disk that does not answer: it fails at the deadline, later appends are
// refused while the disk stays frozen, and the log resumes by itself when it answers.
// segment_max_bytes != 0: the frozen call is the directory sync of a new segment.
void AuditFaultsTest::late_sync_fails_the_append_then_recovers(std::uint64_t segment_max_bytes) {
    BlockingFileOps ops;
    LogOptions o = options();
    // Long enough that a real fdatasync on a busy CI disk (before hold()) stays within it.
    o.sync_timeout = 1500ms;
    if (segment_max_bytes != 0) o.segment_max_bytes = segment_max_bytes;
    auto log = open(o, &ops);
    ASSERT_TRUE(log.ok()) << log.error().to_string();
    ASSERT_TRUE((*log)->append(sample_entry(0)).ok());

    ops.hold();
    const auto start = std::chrono::steady_clock::now();
    auto r = (*log)->append(sample_entry(1));
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().kind, core::ErrorKind::unavailable);
    EXPECT_EQ(r.error().code, "audit.sync_timeout");
    EXPECT_GE(took, 1500ms);
    EXPECT_LT(took, 5s);  // answered at the deadline, not when the disk comes back
    ASSERT_TRUE(ops.wait_blocked(5s));
    EXPECT_TRUE((*log)->slow());
    EXPECT_FALSE((*log)->healthy());
    EXPECT_EQ((*log)->state(), LogState::open);
    // Meanwhile appends are refused at once, and nothing became durable.
    EXPECT_EQ((*log)->append(sample_entry(2)).error().code, "audit.sync_timeout");
    bool async_refused = false;
    (*log)->append_async(sample_entry(2), [&](core::Result<Appended> a) {
        async_refused = !a.ok() && a.error().code == "audit.sync_timeout";
    });
    EXPECT_TRUE(async_refused);
    EXPECT_EQ((*log)->size(), 1u);
    // The watchdog writes its line next to answering the appender: wait for it.
    EXPECT_TRUE(eventually([&] { return lines_.count("audit log: sync past deadline") == 1u; }))
        << lines_.all();

    ops.release();
    ASSERT_TRUE(eventually([&] { return (*log)->healthy(); })) << lines_.all();
    EXPECT_TRUE(eventually([&] {
        return lines_.count("sync completed within the deadline again") == 1u;
    })) << lines_.all();
    // The entry whose append timed out was written in its place: kept, never acknowledged.
    auto next = (*log)->append(sample_entry(3));
    ASSERT_TRUE(next.ok()) << next.error().to_string();
    EXPECT_EQ(next->index, 2u);
    ASSERT_TRUE((*log)->close().ok());
    log->reset();

    VerifyOptions vo;
    vo.dir = o.dir;
    const VerifyReport report = verify_log_directory(vo, verifier());
    EXPECT_EQ(report.status, VerifyStatus::verified);
    EXPECT_EQ(report.size, 3u);
}

TEST_F(AuditFaultsTest, SyncPastItsDeadlineFailsTheAppendAndTheLogRecoversWhenTheDiskAnswers) {
    late_sync_fails_the_append_then_recovers(0);
}

// Creating the next segment syncs the directory: a disk that freezes right then is caught by
// the same deadline as the write and fdatasync.
TEST_F(AuditFaultsTest, SegmentRollPastTheDeadlineFailsTheAppendAndTheLogRecovers) {
    late_sync_fails_the_append_then_recovers(1);  // every batch after the first rolls
}

TEST_F(AuditFaultsTest, AsyncAppendsWaitingBehindALateSyncAllHearTheTimeoutOnce) {
    BlockingFileOps ops;
    LogOptions o = options();
    o.sync_timeout = 200ms;
    auto log = open(o, &ops);
    ASSERT_TRUE(log.ok());
    ops.hold();
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> codes;
    for (int i = 0; i < 20; ++i) {
        (*log)->append_async(sample_entry(static_cast<std::uint64_t>(i)),
                             [&](core::Result<Appended> a) {
                                 std::lock_guard lk(mu);
                                 codes.push_back(a.ok() ? "ok" : a.error().code);
                                 cv.notify_all();
                             });
    }
    {
        std::unique_lock lk(mu);
        ASSERT_TRUE(cv.wait_for(lk, 10s, [&] { return codes.size() == 20; }));
        for (const auto& c : codes) EXPECT_EQ(c, "audit.sync_timeout");
    }
    ops.release();
    ASSERT_TRUE(eventually([&] { return (*log)->healthy(); }));
    ASSERT_TRUE((*log)->close().ok());
    std::lock_guard lk(mu);
    EXPECT_EQ(codes.size(), 20u);  // each callback ran exactly once
    EXPECT_EQ((*log)->size(), 20u);
}

TEST_F(AuditFaultsTest, DiskFullWritesOneOperationalLineNamingTheErrno) {
    for (int err : {ENOSPC, EIO, EPERM, EFBIG}) {
        SCOPED_TRACE(err);
        test::TempDir tmp;
        Lines lines;
        testing::FailingFileOps ops;
        ops.errno_value = err;
        LogOptions o = testing::test_options(tmp.path() / "log");
        auto log = AuditLog::open(o, {&signer_, nullptr, &ops, lines.sink()});
        ASSERT_TRUE(log.ok());
        ops.armed = true;
        for (int i = 0; i < 5; ++i) EXPECT_FALSE((*log)->append(sample_entry(0)).ok());
        const std::string name = ::strerrorname_np(err);
        EXPECT_EQ(lines.count("audit log failed closed"), 1u) << lines.all();
        EXPECT_EQ(lines.count(name), 1u) << lines.all();
        EXPECT_NE((*log)->failure()->message.find(name), std::string::npos);
    }
}

TEST_F(AuditFaultsTest, CheckpointSigningFailuresAreReportedOncePerPeriodAndTheRecoveryOnce) {
    testing::FailingFileOps ops;
    auto log = open(options(), &ops);
    ASSERT_TRUE(log.ok());
    signer_.fail = true;
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE((*log)->append(sample_entry(static_cast<std::uint64_t>(i))).ok());
        auto st = (*log)->checkpoint_now();
        ASSERT_FALSE(st.ok());
        EXPECT_EQ(st.error().code, "test.sign_failed");
    }
    EXPECT_TRUE((*log)->healthy());  // entries stay durable
    EXPECT_EQ(lines_.count("audit checkpoint: signing failed"), 1u) << lines_.all();
    EXPECT_EQ(lines_.count("test.sign_failed"), 1u) << lines_.all();
    signer_.fail = false;
    ASSERT_TRUE((*log)->checkpoint_now().ok());
    ASSERT_TRUE((*log)->append(sample_entry(9)).ok());
    ASSERT_TRUE((*log)->checkpoint_now().ok());
    EXPECT_EQ(lines_.count("signed and anchored again"), 1u) << lines_.all();
}

TEST_F(AuditFaultsTest, ReportsAfterThePeriodCountWhatWasSuppressed) {
    testing::FailingFileOps ops;
    LogOptions o = options();
    o.report_interval = 0ms;  // every failure reported
    auto log = open(o, &ops);
    ASSERT_TRUE(log.ok());
    signer_.fail = true;
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE((*log)->append(sample_entry(static_cast<std::uint64_t>(i))).ok());
        EXPECT_FALSE((*log)->checkpoint_now().ok());
    }
    EXPECT_EQ(lines_.count("audit checkpoint: signing failed"), 3u) << lines_.all();
}

TEST(AuditLogOptions, SyncTimeoutMustBePositive) {
    test::TempDir tmp;
    testing::OsslEd25519Signer signer;
    LogOptions o = testing::test_options(tmp.path() / "log");
    o.sync_timeout = 0ms;
    auto log = AuditLog::open(o, {&signer, nullptr, nullptr});
    ASSERT_FALSE(log.ok());
    EXPECT_EQ(log.error().code, "audit.options_invalid");
}

}  // namespace
}  // namespace licentra::audit
