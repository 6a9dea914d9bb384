// libfsfault.so loaded with dlopen and its fdatasync/fsync called directly: they forward to the
// next definition (libc's) just as when the library is preloaded. The library reads its
// environment at the first call, so every case shares one control and one statistics file and
// looks at counter differences.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "support/test_support.hpp"

namespace licentra::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using SyncFn = int (*)(int);

SyncFn symbol(void* library, const char* name) {
    void* sym = ::dlsym(library, name);
    SyncFn fn = nullptr;
    static_assert(sizeof fn == sizeof sym);
    std::memcpy(&fn, &sym, sizeof sym);
    return fn;
}

class FsFault : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        dir_ = new TempDir;
        ::setenv("FSFAULT_CONTROL", control().c_str(), 1);
        ::setenv("FSFAULT_STATS", (dir_->path() / "fsfault.stats").c_str(), 1);
        library_ = ::dlopen(FSFAULT_LIBRARY, RTLD_NOW | RTLD_LOCAL);
        ASSERT_NE(library_, nullptr) << ::dlerror();
        fdatasync_ = symbol(library_, "fdatasync");
        fsync_ = symbol(library_, "fsync");
        ASSERT_NE(fdatasync_, nullptr);
        ASSERT_NE(fsync_, nullptr);
    }
    static void TearDownTestSuite() {
        // The library stays loaded, as a preloaded library does for the life of its host: its
        // state is meant to outlive static destruction, and unloading it would make that state
        // unreachable (a leak to LeakSanitizer).
        delete dir_;
        dir_ = nullptr;
    }

    void SetUp() override {
        set_control("");
        fd_ = ::open((dir_->path() / "data").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_GE(fd_, 0) << std::strerror(errno);
    }
    void TearDown() override {
        set_control("");
        ::close(fd_);
    }

    static std::filesystem::path control() { return dir_->path() / "fsfault.ctl"; }
    // Atomically, as the integration tests do.
    static void set_control(const std::string& rules) {
        write_file(control().string() + ".new", rules);
        std::filesystem::rename(control().string() + ".new", control());
    }
    // The value of the statistics line "<key> N" (0 when absent).
    static long value(const std::string& key) {
        std::error_code ec;
        const auto path = dir_->path() / "fsfault.stats";
        if (!std::filesystem::exists(path, ec)) return 0;
        const std::string text = read_file(path);
        const std::string prefix = "\n" + key + " ";
        const auto pos = text.find(prefix);
        return pos == std::string::npos ? 0 : std::stol(text.substr(pos + prefix.size()));
    }
    static long stat(const std::string& what, const std::string& function) {
        return value(what + " " + function);
    }
    template <class Pred>
    static bool wait_until(Pred pred, std::chrono::milliseconds limit) {
        const auto deadline = Clock::now() + limit;
        while (!pred()) {
            if (Clock::now() >= deadline) return false;
            std::this_thread::sleep_for(5ms);
        }
        return true;
    }

    static TempDir* dir_;
    static void* library_;
    static SyncFn fdatasync_;
    static SyncFn fsync_;
    int fd_ = -1;
};
TempDir* FsFault::dir_ = nullptr;
void* FsFault::library_ = nullptr;
SyncFn FsFault::fdatasync_ = nullptr;
SyncFn FsFault::fsync_ = nullptr;

TEST_F(FsFault, ForwardsResultsAndErrnoAndCountsCalls) {
    const long calls = stat("calls", "fdatasync");
    EXPECT_EQ(fdatasync_(fd_), 0);
    EXPECT_EQ(fsync_(fd_), 0);
    errno = 0;
    EXPECT_EQ(fdatasync_(-1), -1);
    EXPECT_EQ(errno, EBADF);
    EXPECT_EQ(stat("calls", "fdatasync"), calls + 2);
    EXPECT_EQ(stat("hanging", "fdatasync"), 0);
}

TEST_F(FsFault, MissingControlFileIsPassThrough) {
    std::filesystem::remove(control());
    const long delayed = stat("delayed", "fdatasync");
    EXPECT_EQ(fdatasync_(fd_), 0);
    EXPECT_EQ(stat("delayed", "fdatasync"), delayed);
}

TEST_F(FsFault, DelaySleepsThenForwardsOnlyForTheNamedFunction) {
    set_control("fdatasync delay=50ms\n");
    const long delayed_fsync = stat("delayed", "fsync");
    const auto t = Clock::now();
    EXPECT_EQ(fdatasync_(fd_), 0);
    EXPECT_GE(Clock::now() - t, 50ms);
    EXPECT_EQ(fsync_(fd_), 0);
    EXPECT_EQ(stat("delayed", "fsync"), delayed_fsync);
    EXPECT_GE(stat("delayed", "fdatasync"), 1);
}

TEST_F(FsFault, HangBlocksUntilTheControlNoLongerSaysSo) {
    set_control("fsync hang\n");
    const long hangs = stat("hangs", "fsync");
    auto call = std::async(std::launch::async, [this] { return fsync_(fd_); });
    ASSERT_TRUE(wait_until([&] { return stat("hanging", "fsync") == 1; }, 2s));
    // The library says the call is hanging; it has not returned (checked without waiting).
    EXPECT_EQ(call.wait_for(0ms), std::future_status::timeout);
    // fdatasync is not named: it goes through while fsync hangs.
    EXPECT_EQ(fdatasync_(fd_), 0);
    set_control("# released\n");
    const auto released = Clock::now();
    ASSERT_EQ(call.wait_for(2s), std::future_status::ready);
    EXPECT_LT(Clock::now() - released, 500ms);
    EXPECT_EQ(call.get(), 0);
    EXPECT_EQ(stat("hanging", "fsync"), 0);
    EXPECT_EQ(stat("hangs", "fsync"), hangs + 1);
}

TEST_F(FsFault, MalformedLinesAreIgnoredAndTheOthersApply) {
    set_control(
        "fdatasync delay=5\n"
        "fdatasync hang please\n"
        "fdatasync\n"
        "sync hang\n"
        "fdatasync delay=1.5ms\n"
        "   # a comment\n"
        "\n"
        "fsync delay=20ms   # slow\n");
    const long delayed = stat("delayed", "fsync");
    const long datasyncs = stat("delayed", "fdatasync");
    EXPECT_EQ(fsync_(fd_), 0);
    EXPECT_EQ(fdatasync_(fd_), 0);
    EXPECT_EQ(stat("delayed", "fsync"), delayed + 1);
    EXPECT_EQ(stat("delayed", "fdatasync"), datasyncs);
    EXPECT_EQ(value("malformed"), 5);
}

}  // namespace
}  // namespace licentra::test
