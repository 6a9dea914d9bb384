// libp11fault.so: a PKCS#11 module that forwards every function of the v2.40 function list to a
// real module and injects faults (return values, delays, hangs) described by a control file.
// For tests and by-hand experiments only; never in front of a production HSM.
//
// Environment (read when the host calls C_GetFunctionList the first time / C_Initialize):
//   P11FAULT_MODULE   the real module (default: SoftHSM2's); loaded once per process
//   P11FAULT_CONTROL  the control file (grammar in control.hpp); re-read when it changes
//   P11FAULT_STATS    where to write call and fault counters; rewritten on change
//   P11FAULT_SEED     seed for probability= and jitter= (default: random)
//
// Thread-safety: every entry point may be called from any thread; the rules, counters and the
// random generator are behind one mutex that is never held across a call to the real module,
// a delay or a hang.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "p11fault/control.hpp"
#include "p11fault/functions.hpp"
#include "preload/file_version.hpp"

#define P11FAULT_EXPORT __attribute__((visibility("default")))

extern "C" P11FAULT_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);

namespace licentra::p11fault {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr const char* kDefaultModule = "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so";
// A file written again within the same timestamp tick (the kernel's coarse clock, a few ms)
// keeps size, mtime and inode: while its mtime is this recent, compare the contents too.
constexpr std::int64_t kRecentNs = 100'000'000;
// A hanging call re-checks the control file at least this often.
constexpr milliseconds kHangPoll{10};
// The statistics file is rewritten at most this often while calls keep coming.
constexpr milliseconds kStatsCoalesce{5};

using FileId = test::preload::FileVersion;
using test::preload::nanos;

std::int64_t wall_ns() {
    timespec t{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &t);
    return nanos(t);
}

std::optional<std::string> read_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            ::close(fd);
            return std::nullopt;
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

// Writes path.tmp and renames it over path, so a reader never sees a half-written file.
void write_file_atomically(const std::string& path, const std::string& text) {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (done == text.size()) (void)::rename(tmp.c_str(), path.c_str());
}

std::string env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::string(v) : std::string(fallback);
}

struct Counters {
    std::uint64_t calls = 0;
    std::uint64_t injected = 0;
    std::uint64_t delayed = 0;
    std::uint64_t hangs = 0;
    std::uint64_t hanging = 0;
};

struct LoadedRule {
    Rule rule;
    std::uint64_t seen = 0;  // calls of a matching function since the rule was loaded
};

struct Decision {
    std::optional<CK_RV> rv;
    microseconds delay{0};
    bool hang = false;
};

class Faults {
  public:
    // At C_Initialize: reads the environment, forgets earlier rules and counters, starts the
    // statistics writer.
    void configure() {
        stop_writer();
        std::lock_guard lock(mu_);
        control_path_ = env_or("P11FAULT_CONTROL", "");
        stats_path_ = env_or("P11FAULT_STATS", "");
        const std::string seed = env_or("P11FAULT_SEED", "");
        if (!seed.empty()) {
            rng_.seed(std::strtoull(seed.c_str(), nullptr, 10));
        } else {
            rng_.seed(std::random_device{}());
        }
        id_ = FileId{};
        text_.clear();
        rules_.clear();
        loads_ = 0;
        malformed_ = 0;
        counters_ = {};
        ++epoch_;
        hang_cv_.notify_all();
        if (!stats_path_.empty()) {
            stop_ = false;
            dirty_ = true;
            writer_ = std::thread([this] { write_loop(); });
        }
    }

    // At C_Finalize: releases hanging calls, writes the final statistics.
    void shutdown() {
        {
            std::lock_guard lock(mu_);
            ++epoch_;
            hang_cv_.notify_all();
        }
        stop_writer();
    }

    // Counts the call, applies delays and hangs, and returns the value to inject, if any.
    std::optional<CK_RV> before(Fn f) {
        refresh();
        Decision d;
        std::uint64_t epoch = 0;
        {
            std::lock_guard lock(mu_);
            auto& c = counters_[static_cast<std::size_t>(f)];
            ++c.calls;
            for (auto& lr : rules_) {
                if (!lr.rule.applies_to(f)) continue;
                ++lr.seen;
                if (!fires(lr)) continue;
                d.delay += lr.rule.delay;
                if (lr.rule.jitter.count() > 0) {
                    std::uniform_int_distribution<std::int64_t> j(0, lr.rule.jitter.count());
                    d.delay += microseconds(j(rng_));
                }
                d.hang = d.hang || lr.rule.hang;
                if (lr.rule.rv && !d.rv) d.rv = lr.rule.rv;
            }
            if (d.delay.count() > 0) ++c.delayed;
            if (d.hang) {
                ++c.hangs;
                ++c.hanging;
            }
            if (d.rv) ++c.injected;
            epoch = epoch_;
            mark_dirty();
        }
        if (d.delay.count() > 0) std::this_thread::sleep_for(d.delay);
        if (d.hang) hang(f, epoch);
        return d.rv;
    }

  private:
    bool fires(const LoadedRule& lr) {
        switch (lr.rule.trigger) {
            case Trigger::every:
                return true;
            case Trigger::nth:
                return lr.seen == lr.rule.nth;
            case Trigger::probability: {
                std::uniform_real_distribution<double> u(0.0, 1.0);
                return u(rng_) < lr.rule.probability;
            }
            default:
                return false;
        }
    }

    bool hang_rule_present(Fn f) const {
        for (const auto& lr : rules_) {
            if (lr.rule.hang && lr.rule.applies_to(f)) return true;
        }
        return false;
    }

    // Blocks until no hang rule names f any more (or the module is finalized). No busy wait:
    // a condition variable woken by reloads, with a bounded wait to look at the file again.
    void hang(Fn f, std::uint64_t epoch) {
        for (;;) {
            {
                std::unique_lock lock(mu_);
                if (epoch_ != epoch || !hang_rule_present(f)) break;
                hang_cv_.wait_for(lock, kHangPoll);
                if (epoch_ != epoch || !hang_rule_present(f)) break;
            }
            refresh();
        }
        std::lock_guard lock(mu_);
        auto& c = counters_[static_cast<std::size_t>(f)];
        if (c.hanging > 0) --c.hanging;
        mark_dirty();
    }

    // Re-reads the control file when its identity, size or times changed, or when it was
    // modified so recently that a second write could share its timestamp.
    void refresh() {
        std::string path;
        {
            std::lock_guard lock(mu_);
            path = control_path_;
        }
        if (path.empty()) return;
        const FileId id = test::preload::file_version(path);
        const bool recent = id.exists && wall_ns() - id.mtime_ns < kRecentNs;
        std::lock_guard lock(mu_);
        if (path != control_path_ || (id == id_ && !recent)) return;
        id_ = id;
        std::string text;
        if (id.exists) {
            auto t = read_file(path);
            if (!t) return;  // vanished between stat and open: look again on the next call
            text = std::move(*t);
        }
        if (text == text_ && loads_ > 0) return;
        text_ = std::move(text);
        load_locked(path);
    }

    void load_locked(const std::string& path) {
        Control control = parse_control(text_);
        for (const auto& e : control.errors) {
            std::fprintf(stderr, "p11fault: %s:%zu: %s; line ignored: %s\n", path.c_str(), e.line,
                         e.message.c_str(), e.text.c_str());
        }
        rules_.clear();
        for (auto& r : control.rules) rules_.push_back({std::move(r), 0});
        malformed_ = control.errors.size();
        ++loads_;
        hang_cv_.notify_all();
        mark_dirty();
    }

    void mark_dirty() {
        dirty_ = true;
        if (writer_idle_) stats_cv_.notify_one();
    }

    std::string render_locked() const {
        std::string out = "# p11fault statistics\n";
        out += "loads " + std::to_string(loads_) + "\n";
        out += "rules " + std::to_string(rules_.size()) + "\n";
        out += "malformed " + std::to_string(malformed_) + "\n";
        const std::pair<const char*, std::uint64_t Counters::*> fields[] = {
            {"calls", &Counters::calls},
            {"injected", &Counters::injected},
            {"delayed", &Counters::delayed},
            {"hangs", &Counters::hangs},
            {"hanging", &Counters::hanging}};
        for (const auto& [name, field] : fields) {
            for (std::size_t i = 0; i < kFunctionCount; ++i) {
                const std::uint64_t v = counters_[i].*field;
                if (v == 0) continue;
                out += std::string(name) + " " + kFunctionNames[i] + " " + std::to_string(v) + "\n";
            }
        }
        return out;
    }

    void write_loop() {
        std::unique_lock lock(mu_);
        for (;;) {
            writer_idle_ = true;
            stats_cv_.wait(lock, [&] { return dirty_ || stop_; });
            writer_idle_ = false;
            const bool stopping = stop_;
            dirty_ = false;
            const std::string text = render_locked();
            const std::string path = stats_path_;
            lock.unlock();
            write_file_atomically(path, text);
            lock.lock();
            if (stopping) return;
            // Coalesce: calls during this pause only set dirty_ (the writer is not idle).
            stop_cv_.wait_for(lock, kStatsCoalesce, [&] { return stop_; });
        }
    }

    void stop_writer() {
        {
            std::lock_guard lock(mu_);
            if (!writer_.joinable()) return;
            stop_ = true;
            stats_cv_.notify_one();
            stop_cv_.notify_one();
        }
        writer_.join();
    }

    std::mutex mu_;
    std::condition_variable hang_cv_;
    std::condition_variable stats_cv_;
    std::condition_variable stop_cv_;
    std::string control_path_;
    std::string stats_path_;
    FileId id_;
    std::string text_;
    std::vector<LoadedRule> rules_;
    std::uint64_t loads_ = 0;
    std::size_t malformed_ = 0;
    std::uint64_t epoch_ = 0;
    std::array<Counters, kFunctionCount> counters_{};
    std::mt19937_64 rng_;
    std::thread writer_;
    bool stop_ = false;
    bool dirty_ = false;
    bool writer_idle_ = false;
};

// Never destroyed: a host may exit without C_Finalize while the writer thread runs.
Faults& faults() {
    static Faults* f = new Faults;
    return *f;
}

CK_FUNCTION_LIST_PTR g_real = nullptr;
CK_RV g_load_rv = CKR_OK;
std::once_flag g_load_once;

void load_real() {
    const std::string path = env_or("P11FAULT_MODULE", kDefaultModule);
    void* dl = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (dl == nullptr) {
        const char* why = ::dlerror();
        std::fprintf(stderr, "p11fault: cannot load %s: %s\n", path.c_str(),
                     why != nullptr ? why : "unknown error");
        g_load_rv = CKR_GENERAL_ERROR;
        return;
    }
    void* sym = ::dlsym(dl, "C_GetFunctionList");
    CK_C_GetFunctionList get = nullptr;
    static_assert(sizeof get == sizeof sym);
    std::memcpy(&get, &sym, sizeof sym);
    if (get == nullptr || get == &::C_GetFunctionList) {
        std::fprintf(stderr, "p11fault: %s is not a PKCS#11 module (or is p11fault itself)\n",
                     path.c_str());
        g_load_rv = CKR_GENERAL_ERROR;
        return;
    }
    CK_FUNCTION_LIST_PTR real = nullptr;
    const CK_RV rv = get(&real);
    if (rv != CKR_OK || real == nullptr) {
        std::fprintf(stderr, "p11fault: C_GetFunctionList of %s failed: %s\n", path.c_str(),
                     rv_name(rv).c_str());
        g_load_rv = rv != CKR_OK ? rv : CKR_GENERAL_ERROR;
        return;
    }
    g_real = real;
}

// ---- ending the real operation when a fault replaces its last call ----
// PKCS#11 v2.40 §5.12 (and likewise §5.8-5.11, §5.13): "A call to C_Sign always terminates
// the active signing operation unless it returns CKR_BUFFER_TOO_SMALL or is a successful call
// ... to determine the length of the buffer needed". An injected error must leave the session
// as a real error would, so the real operation is completed into a scratch buffer, wiped and
// dropped.

void wipe(std::vector<CK_BYTE>& b) { ::explicit_bzero(b.data(), b.size()); }

template <typename F>
void drain_single(F fn, CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR,
                  CK_ULONG_PTR) {
    CK_ULONG len = 0;
    if (fn(s, in, in_len, nullptr, &len) != CKR_OK) return;
    std::vector<CK_BYTE> buf(len + 1);
    (void)fn(s, in, in_len, buf.data(), &len);
    wipe(buf);
}

template <typename F>
void drain_final(F fn, CK_SESSION_HANDLE s) {
    CK_ULONG len = 0;
    if (fn(s, nullptr, &len) != CKR_OK) return;
    std::vector<CK_BYTE> buf(len + 1);
    (void)fn(s, buf.data(), &len);
    wipe(buf);
}

template <Fn F, typename... A>
void end_operation(CK_FUNCTION_LIST_PTR real, CK_RV injected, A... a) {
    if (injected == CKR_BUFFER_TOO_SMALL) return;  // the operation stays active (§5.2)
    const auto session = [](CK_SESSION_HANDLE s, auto...) { return s; };
    if constexpr (F == Fn::C_Sign) {
        drain_single(real->C_Sign, a...);
    } else if constexpr (F == Fn::C_SignRecover) {
        drain_single(real->C_SignRecover, a...);
    } else if constexpr (F == Fn::C_Encrypt) {
        drain_single(real->C_Encrypt, a...);
    } else if constexpr (F == Fn::C_Decrypt) {
        drain_single(real->C_Decrypt, a...);
    } else if constexpr (F == Fn::C_Digest) {
        drain_single(real->C_Digest, a...);
    } else if constexpr (F == Fn::C_VerifyRecover) {
        drain_single(real->C_VerifyRecover, a...);
    } else if constexpr (F == Fn::C_SignUpdate || F == Fn::C_SignFinal) {
        drain_final(real->C_SignFinal, session(a...));
    } else if constexpr (F == Fn::C_EncryptUpdate || F == Fn::C_EncryptFinal) {
        drain_final(real->C_EncryptFinal, session(a...));
    } else if constexpr (F == Fn::C_DecryptUpdate || F == Fn::C_DecryptFinal) {
        drain_final(real->C_DecryptFinal, session(a...));
    } else if constexpr (F == Fn::C_DigestUpdate || F == Fn::C_DigestKey ||
                         F == Fn::C_DigestFinal) {
        drain_final(real->C_DigestFinal, session(a...));
    } else if constexpr (F == Fn::C_Verify) {
        (void)real->C_Verify(a...);
    } else if constexpr (F == Fn::C_VerifyFinal) {
        (void)real->C_VerifyFinal(a...);
    } else if constexpr (F == Fn::C_VerifyUpdate) {
        CK_BYTE zero = 0;
        (void)real->C_VerifyFinal(session(a...), &zero, 1);
    }
}

std::atomic<bool> g_reported_exception{false};

// One forwarding function per entry of the list, generated from the X-macro below.
template <auto Member, Fn F, typename Sig>
struct Forward;

template <auto Member, Fn F, typename... A>
struct Forward<Member, F, CK_RV (*)(A...)> {
    static CK_RV call(A... a) {
        CK_FUNCTION_LIST_PTR real = g_real;
        if (real == nullptr) return CKR_CRYPTOKI_NOT_INITIALIZED;
        std::optional<CK_RV> injected;
        try {
            injected = faults().before(F);
        } catch (const std::exception& e) {
            // Never let an exception cross the C interface; faults are best effort.
            if (!g_reported_exception.exchange(true)) {
                std::fprintf(stderr, "p11fault: %s: %s; forwarding without faults\n",
                             kFunctionNames[static_cast<std::size_t>(F)], e.what());
            }
        }
        if (injected) {
            try {
                end_operation<F>(real, *injected, a...);
            } catch (const std::exception&) {
                // Best effort: the scratch buffer could not be allocated.
            }
            return *injected;
        }
        if constexpr (F == Fn::C_Finalize) {
            const CK_RV rv = (real->*Member)(a...);
            faults().shutdown();
            return rv;
        } else {
            return (real->*Member)(a...);
        }
    }
};

CK_RV initialize(CK_VOID_PTR args) {
    if (g_real == nullptr) return g_load_rv != CKR_OK ? g_load_rv : CKR_GENERAL_ERROR;
    try {
        faults().configure();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "p11fault: C_Initialize: %s; forwarding without faults\n", e.what());
        return g_real->C_Initialize(args);
    }
    // The arguments go to the real module exactly as given (locking flags, mutex callbacks).
    return Forward<&CK_FUNCTION_LIST::C_Initialize, Fn::C_Initialize, CK_C_Initialize>::call(args);
}

CK_FUNCTION_LIST make_list() {
    CK_FUNCTION_LIST l{};
    l.version = {2, 40};
#define P11FAULT_FORWARD(name) \
    l.name = &Forward<&CK_FUNCTION_LIST::name, Fn::name, CK_##name>::call;
    P11FAULT_FUNCTIONS(P11FAULT_FORWARD)
#undef P11FAULT_FORWARD
    l.C_Initialize = &initialize;
    l.C_GetFunctionList = &::C_GetFunctionList;
    return l;
}

CK_FUNCTION_LIST g_list = make_list();

}  // namespace
}  // namespace licentra::p11fault

extern "C" P11FAULT_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
    using namespace licentra::p11fault;
    if (list == nullptr) return CKR_ARGUMENTS_BAD;
    try {
        std::call_once(g_load_once, load_real);
    } catch (const std::exception&) {
        return CKR_GENERAL_ERROR;
    }
    if (g_real == nullptr) return g_load_rv != CKR_OK ? g_load_rv : CKR_GENERAL_ERROR;
    *list = &g_list;
    return CKR_OK;
}
