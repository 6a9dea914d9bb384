// libfsfault.so: an LD_PRELOAD library that interposes fdatasync(2) and fsync(2), forwards every
// call to the real function (dlsym(RTLD_NEXT)) and can first delay it or block it, as a control
// file says that it re-reads while running. It stands in for a slow or frozen disk in tests
// (docs/testing.md, "File-system faults (fsfault)"); never preload it into a production daemon.
//
// Environment (read at the first intercepted call):
//   FSFAULT_CONTROL  the control file; unset = pass-through without looking at any file
//   FSFAULT_STATS    where to write call counters (optional), rewritten by rename on change
//
// Control file, one rule per line, '#' starts a comment:
//   <fdatasync|fsync> hang                   block each call until no rule says hang, then forward
//   <fdatasync|fsync> delay=<N><us|ms|s>     sleep N, then forward
// A missing or unreadable file means no rules; a malformed line is reported on stderr once per
// version of the file and ignored. Nothing here throws out of an intercepted call or fails it:
// whatever goes wrong, the call is forwarded.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "preload/file_version.hpp"

#define FSFAULT_EXPORT extern "C" __attribute__((visibility("default")))

namespace licentra::fsfault {
namespace {

using Micros = std::chrono::microseconds;

enum Fn : std::size_t { kFdatasync, kFsync, kFnCount };
constexpr std::array<const char*, kFnCount> kNames = {"fdatasync", "fsync"};

// A blocked call looks at the control file again this often.
constexpr std::chrono::milliseconds kHangPoll{10};
constexpr Micros kMaxDelay = std::chrono::hours(1);
// Two writes within one kernel timestamp tick can leave size and times unchanged: while the
// file's mtime is this recent, its contents are compared as well.
constexpr std::int64_t kRecentNs = 100'000'000;
constexpr std::size_t kMaxControlBytes = 64 * 1024;

struct Action {
    bool hang = false;
    Micros delay{0};
};

struct Counts {
    std::uint64_t calls = 0;
    std::uint64_t delayed = 0;
    std::uint64_t hangs = 0;
    std::uint64_t hanging = 0;
};

using test::preload::FileVersion;
using test::preload::nanos;

bool modified_recently(const FileVersion& v) {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &now);
    return v.exists && nanos(now) - v.mtime_ns < kRecentNs;
}

// The file's contents (at most kMaxControlBytes), or nothing when it cannot be read.
std::optional<std::string> contents(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string text;
    std::array<char, 4096> chunk{};
    ssize_t n = 0;
    while (text.size() < kMaxControlBytes && (n = ::read(fd, chunk.data(), chunk.size())) > 0) {
        text.append(chunk.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (n < 0) return std::nullopt;
    return text;
}

// "<N>us", "<N>ms" or "<N>s" with a whole N, at most an hour.
std::optional<Micros> duration_of(std::string_view word) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), n);
    if (ec != std::errc() || end == word.data()) return std::nullopt;
    const std::string_view unit(end, static_cast<std::size_t>(word.data() + word.size() - end));
    std::uint64_t per_unit = 0;
    if (unit == "us") per_unit = 1;
    if (unit == "ms") per_unit = 1000;
    if (unit == "s") per_unit = 1'000'000;
    const auto limit = static_cast<std::uint64_t>(kMaxDelay.count());
    if (per_unit == 0 || n > limit / per_unit) return std::nullopt;
    return Micros(static_cast<Micros::rep>(n * per_unit));
}

// One rule line (comment already removed) into actions; an error message when malformed.
std::string apply_line(std::string_view line, std::array<Action, kFnCount>& actions) {
    constexpr std::string_view kSpace = " \t\r";
    std::optional<std::size_t> fn;
    Action action;
    bool acts = false;
    while (true) {
        const auto begin = line.find_first_not_of(kSpace);
        if (begin == std::string_view::npos) break;
        line.remove_prefix(begin);
        const std::string_view word = line.substr(0, line.find_first_of(kSpace));
        line.remove_prefix(word.size());
        if (!fn) {
            for (std::size_t i = 0; i < kFnCount; ++i) {
                if (word == kNames[i]) fn = i;
            }
            if (!fn) return "unknown function '" + std::string(word) + "'";
        } else if (word == "hang") {
            action.hang = acts = true;
        } else if (word.starts_with("delay=")) {
            const auto d = duration_of(word.substr(6));
            if (!d) return "delay= needs a whole duration such as 250ms, 500us or 2s";
            action.delay += *d;
            acts = true;
        } else {
            return "unknown word '" + std::string(word) + "'";
        }
    }
    if (!fn) return {};  // blank or comment only
    if (!acts) return "no action: give hang or delay=";
    actions[*fn].hang = actions[*fn].hang || action.hang;
    actions[*fn].delay += action.delay;
    return {};
}

using Real = int (*)(int);

// The next definition after this library's (libc's), looked up once.
int forward(Fn f, int fd) {
    static std::array<std::atomic<Real>, kFnCount> cache{};
    Real real = cache[f].load(std::memory_order_acquire);
    if (real == nullptr) {
        void* sym = ::dlsym(RTLD_NEXT, kNames[f]);
        static_assert(sizeof real == sizeof sym);
        std::memcpy(&real, &sym, sizeof sym);
        cache[f].store(real, std::memory_order_release);
    }
    if (real != nullptr) return real(fd);
    return static_cast<int>(::syscall(f == kFdatasync ? SYS_fdatasync : SYS_fsync, fd));
}

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::string(v) : std::string();
}

class Faults {
  public:
    // Never destroyed: threads may still sync while the process exits.
    static Faults& instance() {
        static Faults* faults = new Faults;
        return *faults;
    }

    int call(Fn f, int fd) {
        if (control_path_.empty() && stats_path_.empty()) return forward(f, fd);
        refresh();
        Action act;
        {
            std::lock_guard lock(mu_);
            Counts& c = counts_[f];
            ++c.calls;
            act = actions_[f];
            if (act.delay.count() > 0) ++c.delayed;
            if (act.hang) {
                ++c.hangs;
                ++c.hanging;
            }
        }
        write_stats();
        if (act.delay.count() > 0) std::this_thread::sleep_for(act.delay);
        if (act.hang) {
            while (true) {
                std::this_thread::sleep_for(kHangPoll);
                refresh();
                std::lock_guard lock(mu_);
                if (!actions_[f].hang) {
                    --counts_[f].hanging;
                    break;
                }
            }
            write_stats();
        }
        return forward(f, fd);
    }

  private:
    Faults() : control_path_(env("FSFAULT_CONTROL")), stats_path_(env("FSFAULT_STATS")) {}

    void refresh() {
        if (control_path_.empty()) return;
        const FileVersion v = test::preload::file_version(control_path_);
        {
            std::lock_guard lock(mu_);
            if (loads_ > 0 && v == version_ && !modified_recently(v)) return;
        }
        std::string text;
        if (v.exists) {
            auto read = contents(control_path_);
            if (!read) return;  // gone between stat and open: look again on the next call
            text = std::move(*read);
        }
        std::lock_guard lock(mu_);
        version_ = v;
        if (loads_ > 0 && text == text_) return;
        text_ = std::move(text);
        std::array<Action, kFnCount> actions{};
        std::size_t number = 0;
        malformed_ = 0;
        for (std::string_view rest = text_; !rest.empty();) {
            std::string_view line = rest.substr(0, rest.find('\n'));
            rest.remove_prefix(std::min(rest.size(), line.size() + 1));
            ++number;
            const std::string error = apply_line(line.substr(0, line.find('#')), actions);
            if (error.empty()) continue;
            ++malformed_;
            std::fprintf(stderr, "fsfault: %s:%zu: %s; line ignored: %.*s\n", control_path_.c_str(),
                         number, error.c_str(), static_cast<int>(line.size()), line.data());
        }
        actions_ = actions;
        ++loads_;
    }

    std::string render() {
        std::lock_guard lock(mu_);
        std::string out = "# fsfault statistics\n";
        out +=
            "loads " + std::to_string(loads_) + "\nmalformed " + std::to_string(malformed_) + "\n";
        const std::array<std::pair<const char*, std::uint64_t Counts::*>, 4> fields = {
            {{"calls", &Counts::calls},
             {"delayed", &Counts::delayed},
             {"hangs", &Counts::hangs},
             {"hanging", &Counts::hanging}}};
        for (const auto& [name, field] : fields) {
            for (std::size_t i = 0; i < kFnCount; ++i) {
                if (counts_[i].*field == 0) continue;
                out += std::string(name) + " " + kNames[i] + " " +
                       std::to_string(counts_[i].*field) + "\n";
            }
        }
        return out;
    }

    // Whole or not at all: a temporary file renamed over the statistics file. One writer at a
    // time, rendering under the same lock, so a later state is never overwritten by an earlier.
    void write_stats() {
        if (stats_path_.empty()) return;
        std::lock_guard writing(stats_mu_);
        const std::string text = render();
        const std::string tmp = stats_path_ + ".tmp";
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return;
        const bool whole =
            ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        ::close(fd);
        if (whole) (void)::rename(tmp.c_str(), stats_path_.c_str());
    }

    const std::string control_path_;
    const std::string stats_path_;
    std::mutex stats_mu_;  // taken before mu_, never after
    std::mutex mu_;
    FileVersion version_;
    std::string text_;
    std::uint64_t loads_ = 0;
    std::uint64_t malformed_ = 0;
    std::array<Action, kFnCount> actions_{};
    std::array<Counts, kFnCount> counts_{};
};

int intercepted(Fn f, int fd) {
    try {
        return Faults::instance().call(f, fd);
    } catch (...) {
        return forward(f, fd);  // out of memory, say: the host still gets its sync
    }
}

}  // namespace
}  // namespace licentra::fsfault

FSFAULT_EXPORT int fdatasync(int fd) {
    return licentra::fsfault::intercepted(licentra::fsfault::kFdatasync, fd);
}

FSFAULT_EXPORT int fsync(int fd) {
    return licentra::fsfault::intercepted(licentra::fsfault::kFsync, fd);
}
