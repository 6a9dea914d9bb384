// HSM faults under a signing load: the real daemon with hsm.module pointed at libp11fault.so
// in front of SoftHSM (docs/testing.md, "Fault injection (p11fault)"). Each case injects a
// fault, checks the answers and /readyz while it lasts, removes it and checks the recovery;
// then the audit log verifies and holds every token a client received. One case also preloads
// libfsfault.so to freeze the audit log's fdatasync ("File-system faults (fsfault)"). Waits are
// on observable conditions (the fault libraries' statistics files, /readyz), each with a bound.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "core/bytes.hpp"
#include "crypto/digest.hpp"
#include "support/audit_entries.hpp"
#include "support/daemon.hpp"

namespace licentra::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kCallTimeout = 1000ms;  // hsm.call_timeout of the daemons under test

struct Answer {
    Clock::time_point start;
    Clock::time_point end;
    unsigned status = 0;
    std::string code;   // problem "code"
    std::string token;  // 201
};

// A daemon in front of libp11fault.so with its own control and statistics files; with
// kWithFsFault also with libfsfault.so preloaded (fdatasync/fsync delays and hangs,
// docs/testing.md "File-system faults (fsfault)"), with control and statistics files of its own.
constexpr bool kWithFsFault = true;

class FaultyDaemon {
  public:
    explicit FaultyDaemon(Deployment& deployment, const std::string& name,
                          std::string audit_config = {}, bool fsfault = false)
        : control_(deployment.dir() / (name + ".ctl")),
          stats_(deployment.dir() / (name + ".stats")),
          fs_control_(deployment.dir() / (name + ".fsctl")),
          fs_stats_(deployment.dir() / (name + ".fsstats")),
          fsfault_(fsfault) {
        write_file(control_, "", 0600);
        DaemonOptions o;
        o.name = name;
        o.hsm_module = P11FAULT_LIBRARY;
        o.hsm_config = "  call_timeout: " + std::to_string(kCallTimeout.count()) + "ms\n";
        o.audit_config = std::move(audit_config);
        o.environment = {{"P11FAULT_MODULE", SoftHsmToken::module_path()},
                         {"P11FAULT_CONTROL", control_.string()},
                         {"P11FAULT_STATS", stats_.string()}};
        if (fsfault_) {
            // Only the daemon's environment: the test process syncs at full speed.
            write_file(fs_control_, "", 0600);
            o.environment.insert(o.environment.end(), {{"LD_PRELOAD", FSFAULT_LIBRARY},
                                                       {"FSFAULT_CONTROL", fs_control_.string()},
                                                       {"FSFAULT_STATS", fs_stats_.string()}});
        }
        daemon_ = std::make_unique<Daemon>(deployment, o);
    }
    // A hang left behind by a failed assertion would hold up the daemon's shutdown.
    ~FaultyDaemon() {
        if (!fsfault_) return;
        try {
            fs_control("");
        } catch (const std::exception&) {
            // the daemon is killed after its shutdown deadline instead
        }
    }
    FaultyDaemon(const FaultyDaemon&) = delete;
    FaultyDaemon& operator=(const FaultyDaemon&) = delete;

    Daemon& daemon() { return *daemon_; }

    void control(const std::string& rules) { replace(control_, rules); }
    std::string stats() const { return contents(stats_); }
    // The value of a statistics line "<what> <function> N" (0 when absent).
    long stat(const std::string& what, const std::string& function) const {
        return value(stats(), what, function);
    }
    // The same for libfsfault.so ("fdatasync hang", "calls fdatasync N").
    void fs_control(const std::string& rules) { replace(fs_control_, rules); }
    std::string fs_stats() const { return contents(fs_stats_); }
    long fs_stat(const std::string& what, const std::string& function) const {
        return value(fs_stats(), what, function);
    }
    unsigned readyz() { return daemon_->ops_get("/readyz").status; }

  private:
    // Atomically, so the library never sees half a file.
    static void replace(const std::filesystem::path& file, const std::string& rules) {
        const auto tmp = file.string() + ".new";
        write_file(tmp, rules, 0600);
        std::filesystem::rename(tmp, file);
    }
    static std::string contents(const std::filesystem::path& file) {
        std::error_code ec;
        if (!std::filesystem::exists(file, ec)) return {};
        return read_file(file);
    }
    static long value(const std::string& text, const std::string& what,
                      const std::string& function) {
        const std::string prefix = what + " " + function + " ";
        auto pos = text.find("\n" + prefix);
        if (pos == std::string::npos) return 0;
        return std::stol(text.substr(pos + 1 + prefix.size()));
    }

    std::filesystem::path control_;
    std::filesystem::path stats_;
    std::filesystem::path fs_control_;
    std::filesystem::path fs_stats_;
    bool fsfault_;
    std::unique_ptr<Daemon> daemon_;
};

// Signing requests on `clients` keep-alive connections until stop().
class Load {
  public:
    Load(Daemon& daemon, int clients) {
        for (int i = 0; i < clients; ++i) {
            threads_.emplace_back([this, &daemon] {
                auto client = daemon.client("license-server");
                while (!stop_.load()) {
                    const std::string body =
                        R"({"key":"product-a","claims":)" + example_claims("product-a") + "}";
                    Answer a;
                    a.start = Clock::now();
                    auto r = client.request("POST", "/v1/tokens", body, "application/json");
                    a.end = Clock::now();
                    if (r) {
                        a.status = r->status;
                        auto j = json::parse(r->body, nullptr, false);
                        if (j.is_object()) {
                            a.code = j.value("code", std::string());
                            a.token = j.value("token", std::string());
                        }
                    }
                    {
                        std::lock_guard lock(mutex_);
                        answers_.push_back(a);
                    }
                    if (!r) {
                        client = daemon.client("license-server");  // reconnect
                    }
                    std::this_thread::sleep_for(5ms);
                }
            });
        }
    }
    ~Load() { stop(); }
    void stop() {
        stop_ = true;
        for (auto& t : threads_) {
            if (t.joinable()) t.join();
        }
    }
    std::vector<Answer> answers() const {
        std::lock_guard lock(mutex_);
        return answers_;
    }
    // True once an answer with `status` started at or after `since`.
    bool answered(unsigned status, Clock::time_point since) const {
        std::lock_guard lock(mutex_);
        for (const auto& a : answers_) {
            if (a.status == status && a.start >= since) return true;
        }
        return false;
    }

  private:
    std::atomic<bool> stop_{false};
    mutable std::mutex mutex_;
    std::vector<Answer> answers_;
    std::vector<std::thread> threads_;
};

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(10ms);
    }
    return pred();
}

// Runs `probe` every 20 ms until `window` has passed: a fault is held for a set time while the
// test keeps checking what must stay true during it.
template <class Probe>
void throughout(Clock::duration window, Probe probe) {
    const auto end = Clock::now() + window;
    do {
        probe();
        if (::testing::Test::HasFatalFailure()) return;
        std::this_thread::sleep_for(20ms);
    } while (Clock::now() < end);
}

long ms(Clock::duration d) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// Stops the daemon, runs `licentra audit verify` and checks that every token a client received
// has its entry in the log.
void check_audit(FaultyDaemon& f, const std::vector<Answer>& answers) {
    Daemon& d = f.daemon();
    d.signal(SIGTERM);
    ASSERT_EQ(d.wait(), 0) << d.log();
    // The operational log's fault and recovery lines, for whoever reads the test output.
    std::istringstream log(d.log());
    for (std::string line; std::getline(log, line);) {
        if (line.find("hsm fault") != std::string::npos) std::cerr << "  " << line << '\n';
    }
    std::string out;
    EXPECT_EQ(d.audit_verify(&out), 0) << out;
    std::set<std::string> logged;
    for (const auto& e : audit_entries(d.audit_dir())) {
        if (e.contains("token_sha256")) logged.insert(e["token_sha256"].get<std::string>());
    }
    std::size_t tokens = 0;
    for (const auto& a : answers) {
        if (a.status != 201) continue;
        ++tokens;
        EXPECT_TRUE(logged.count(core::hex_encode(crypto::sha256(core::as_bytes(a.token)))))
            << "a token a client received has no audit entry";
    }
    EXPECT_GT(tokens, 0u);
}

// Every answer is one of `allowed` (status, code prefix).
void expect_only(const std::vector<Answer>& answers,
                 const std::vector<std::pair<unsigned, std::string>>& allowed) {
    for (const auto& a : answers) {
        bool ok = false;
        for (const auto& [status, code] : allowed) {
            ok = ok || (a.status == status && a.code.rfind(code, 0) == 0);
        }
        EXPECT_TRUE(ok) << "unexpected answer " << a.status << " " << a.code;
    }
}

class HsmFaults : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        deployment_ = new Deployment(example_policy_without_rate_limit());
    }
    static void TearDownTestSuite() {
        delete deployment_;
        deployment_ = nullptr;
    }
    static Deployment* deployment_;
};
Deployment* HsmFaults::deployment_ = nullptr;

TEST_F(HsmFaults, DeviceErrorOnEverySignatureAnswers503ThenRecoversWithoutRestart) {
    FaultyDaemon f(*deployment_, "device");
    Load load(f.daemon(), 2);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, Clock::now() - 10s); }, 5s));

    f.control("C_Sign rv=CKR_DEVICE_ERROR every\n");
    const auto fault = Clock::now();
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 503; }, 1s))
        << "/readyz still 200 one second into the fault";
    EXPECT_LE(ms(Clock::now() - fault), 1000);
    ASSERT_TRUE(wait_until([&] { return load.answered(503, fault + 50ms); }, 2s));
    EXPECT_NE(f.daemon().ops_get("/readyz").body.find("hsm: hsm.device_unavailable"),
              std::string::npos);
    // The fault lasts ~1 s, not ready all along.
    throughout(fault + 1s - Clock::now(), [&] { EXPECT_EQ(f.readyz(), 503u); });
    f.control("");
    const auto cleared = Clock::now();
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 200; }, 5s));
    const long ready_after = ms(Clock::now() - cleared);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, cleared + 50ms); }, 5s));
    const long signing_after = ms(Clock::now() - cleared);
    RecordProperty("ready_after_ms", static_cast<int>(ready_after));
    RecordProperty("signing_after_ms", static_cast<int>(signing_after));
    std::cerr << "device error: /readyz 200 " << ready_after << " ms and 201 " << signing_after
              << " ms after the fault cleared\n";
    load.stop();

    auto answers = load.answers();
    // While the fault lasted (started well after it began and ended before it cleared): 503.
    for (const auto& a : answers) {
        if (a.start >= fault + 50ms && a.end <= cleared) {
            EXPECT_EQ(a.status, 503u) << a.code;
            EXPECT_EQ(a.code, "hsm.device_unavailable");
        }
    }
    expect_only(answers, {{201, ""}, {503, "hsm."}});
    // The module writes its counters asynchronously: wait for them, do not read once.
    EXPECT_TRUE(wait_until([&] { return f.stat("injected", "C_Sign") > 0; }, 2s)) << f.stats();
    const std::string log = f.daemon().log();
    EXPECT_NE(log.find("CKR_DEVICE_ERROR"), std::string::npos) << log;
    EXPECT_NE(log.find("recovered after"), std::string::npos) << log;
    check_audit(f, answers);
}

// Every other fault class a signature can meet: 503 with an hsm.* code while it lasts, not
// ready within a second, signing and ready again after it clears, no restart.
TEST_F(HsmFaults, EveryOtherFaultClassOnSigningAnswers503ThenRecovers) {
    for (const std::string ckr : {"CKR_DEVICE_REMOVED", "CKR_GENERAL_ERROR", "CKR_DEVICE_MEMORY",
                                  "CKR_SESSION_CLOSED", "CKR_USER_NOT_LOGGED_IN"}) {
        SCOPED_TRACE(ckr);
        FaultyDaemon f(*deployment_, "class-" + ckr.substr(4));
        Load load(f.daemon(), 1);
        ASSERT_TRUE(wait_until([&] { return load.answered(201, Clock::now() - 10s); }, 5s));
        f.control("C_Sign rv=" + ckr + " every\n");
        const auto fault = Clock::now();
        ASSERT_TRUE(wait_until([&] { return f.readyz() == 503; }, 1s))
            << f.daemon().ops_get("/readyz").body;
        ASSERT_TRUE(wait_until([&] { return load.answered(503, fault + 50ms); }, 2s));
        f.control("");
        const auto cleared = Clock::now();
        ASSERT_TRUE(wait_until([&] { return f.readyz() == 200; }, 5s))
            << f.daemon().ops_get("/readyz").body;
        ASSERT_TRUE(wait_until([&] { return load.answered(201, cleared + 50ms); }, 5s));
        std::cerr << ckr << ": signing again " << ms(Clock::now() - cleared)
                  << " ms after the fault cleared\n";
        load.stop();
        auto answers = load.answers();
        expect_only(answers, {{201, ""}, {503, "hsm."}});
        EXPECT_NE(f.daemon().log().find(ckr), std::string::npos) << f.daemon().log();
        check_audit(f, answers);
    }
}

TEST_F(HsmFaults, CheckpointThatCannotBeAnchoredMakesTheDaemonNotReadyUntilItIs) {
    // A checkpoint every 5 entries; anchoring it writes a data object (C_CreateObject), which
    // the signing path never does: signing goes on while the checkpoint cannot be anchored.
    FaultyDaemon f(*deployment_, "anchor", "  checkpoint:\n    every_entries: 5\n");
    Load load(f.daemon(), 1);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, Clock::now() - 10s); }, 5s));
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 200; }, 5s));

    f.control("C_CreateObject rv=CKR_DEVICE_MEMORY every\n");
    const auto fault = Clock::now();
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 503; }, 5s))
        << f.daemon().ops_get("/readyz").body;
    EXPECT_NE(f.daemon().ops_get("/readyz").body.find("audit checkpoint: "), std::string::npos)
        << f.daemon().ops_get("/readyz").body;
    EXPECT_TRUE(wait_until([&] { return f.stat("injected", "C_CreateObject") > 0; }, 2s))
        << f.stats();

    f.control("");
    const auto cleared = Clock::now();
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 200; }, 5s))
        << f.daemon().ops_get("/readyz").body;
    std::cerr << "checkpoint anchoring: /readyz 200 " << ms(Clock::now() - cleared)
              << " ms after the fault cleared (" << ms(cleared - fault) << " ms of fault)\n";
    load.stop();
    auto answers = load.answers();
    // Signing never stopped for the checkpoint (a 1 s call deadline may still trip on a
    // loaded machine).
    expect_only(answers, {{201, ""}, {503, "hsm.timeout"}});
    const std::string log = f.daemon().log();
    EXPECT_NE(log.find("signed and anchored again"), std::string::npos) << log;
    check_audit(f, answers);
}

TEST_F(HsmFaults, InvalidKeyHandleIsResolvedAgainByLabelAndId) {
    FaultyDaemon f(*deployment_, "handle");
    Load load(f.daemon(), 2);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, Clock::now() - 10s); }, 5s));
    f.control(
        "C_SignInit rv=CKR_OBJECT_HANDLE_INVALID nth=3\n"
        "C_SignInit rv=CKR_OBJECT_HANDLE_INVALID nth=8\n"
        "C_SignInit rv=CKR_KEY_HANDLE_INVALID nth=13\n");
    ASSERT_TRUE(wait_until([&] { return f.stat("injected", "C_SignInit") >= 3; }, 5s)) << f.stats();
    const auto after = Clock::now();
    ASSERT_TRUE(wait_until([&] { return load.answered(201, after); }, 2s));
    EXPECT_EQ(f.readyz(), 200u);
    load.stop();
    auto answers = load.answers();
    expect_only(answers, {{201, ""}});
    EXPECT_NE(f.daemon().log().find("CKR_OBJECT_HANDLE_INVALID"), std::string::npos);
    check_audit(f, answers);
}

TEST_F(HsmFaults, HangingSignatureAnswers503WithinTheDeadlineAndReadsKeepAnswering) {
    FaultyDaemon f(*deployment_, "hang");
    Load load(f.daemon(), 3);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, Clock::now() - 10s); }, 5s));

    f.control("C_Sign hang\n");
    const auto hang = Clock::now();
    ASSERT_TRUE(wait_until([&] { return f.stat("hanging", "C_Sign") >= 1; }, 2s)) << f.stats();
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 503; }, kCallTimeout + 1s));
    EXPECT_NE(f.daemon().ops_get("/readyz").body.find("hsm: hsm.timeout"), std::string::npos);
    ASSERT_TRUE(wait_until([&] { return load.answered(503, hang); }, kCallTimeout + 2s));
    // io threads, health, metrics and reads answer while the module hangs (for about 1 s more).
    throughout(1s, [&] {
        const auto t = Clock::now();
        EXPECT_EQ(f.daemon().ops_get("/healthz").status, 200u);
        EXPECT_EQ(f.daemon().ops_get("/metrics").status, 200u);
        auto jwks = f.daemon().request("license-server", "GET", "/.well-known/jwks.json");
        EXPECT_EQ(jwks.status, 200u);
        EXPECT_NE(jwks.body.find("\"kid\""), std::string::npos) << jwks.body;
        EXPECT_EQ(f.daemon().request("auditor", "GET", "/v1/keys").status, 200u);
        EXPECT_LT(ms(Clock::now() - t), 1000);
    });
    EXPECT_EQ(f.readyz(), 503u);
    EXPECT_TRUE(wait_until([&] { return f.stat("hanging", "C_Sign") >= 1; }, 2s)) << f.stats();

    f.control("");
    const auto released = Clock::now();
    ASSERT_TRUE(wait_until([&] { return f.stat("hanging", "C_Sign") == 0; }, 2s)) << f.stats();
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 200; }, 5s));
    const long ready_after = ms(Clock::now() - released);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, released + 50ms); }, 5s));
    std::cerr << "hang: /readyz 200 " << ready_after << " ms after the release\n";
    load.stop();

    auto answers = load.answers();
    for (const auto& a : answers) {
        if (a.start >= hang + 50ms && a.end <= released) {
            EXPECT_EQ(a.status, 503u) << a.code;
            EXPECT_EQ(a.code, "hsm.timeout");
        }
        if (a.start >= hang + 50ms && a.start + kCallTimeout + 1s < released) {
            EXPECT_LE(ms(a.end - a.start), ms(kCallTimeout + 1s)) << a.status << " " << a.code;
        }
    }
    expect_only(answers, {{201, ""}, {503, "hsm.timeout"}});
    EXPECT_NE(f.daemon().log().find("hsm.call_timeout"), std::string::npos);
    check_audit(f, answers);
}

TEST_F(HsmFaults, TokenNotPresentAndBrokenSessionsRecoverWithoutRestart) {
    FaultyDaemon f(*deployment_, "token");
    Load load(f.daemon(), 2);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, Clock::now() - 10s); }, 5s));
    for (const std::string rules :
         {"* rv=CKR_TOKEN_NOT_PRESENT every\n", "C_Sign rv=CKR_SESSION_HANDLE_INVALID every\n"}) {
        f.control(rules);
        const auto fault = Clock::now();
        ASSERT_TRUE(wait_until([&] { return f.readyz() == 503; }, 1s)) << rules;
        ASSERT_TRUE(wait_until([&] { return load.answered(503, fault + 50ms); }, 2s)) << rules;
        throughout(fault + 1s - Clock::now(), [&] { EXPECT_EQ(f.readyz(), 503u) << rules; });
        f.control("");
        const auto cleared = Clock::now();
        ASSERT_TRUE(wait_until([&] { return f.readyz() == 200; }, 5s)) << rules;
        ASSERT_TRUE(wait_until([&] { return load.answered(201, cleared + 50ms); }, 5s)) << rules;
        std::cerr << rules.substr(0, rules.size() - 1) << ": recovered (201, /readyz 200) "
                  << ms(Clock::now() - cleared) << " ms after the fault cleared\n";
    }
    load.stop();
    auto answers = load.answers();
    expect_only(answers, {{201, ""}, {503, "hsm."}});
    // The versions and the JWKS never went empty.
    auto keys = f.daemon().request("auditor", "GET", "/v1/keys/product-a");
    EXPECT_EQ(keys.status, 200u) << keys.body;
    check_audit(f, answers);
}

// C_Login hangs while the pool logs in again: first a burst in which every signature reports
// CKR_SESSION_HANDLE_INVALID and every C_OpenSession CKR_TOKEN_NOT_PRESENT, until every real
// session is closed (so the module has logged the application out); then C_Login hangs for the
// sessions being re-opened.
TEST_F(HsmFaults, LoginHangWhileSessionsReopenAnswers503WithinTheDeadlineThenRecovers) {
    FaultyDaemon f(*deployment_, "login");
    Load load(f.daemon(), 2);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, Clock::now() - 10s); }, 5s));

    f.control(
        "C_Sign rv=CKR_SESSION_HANDLE_INVALID every\n"
        "C_OpenSession rv=CKR_TOKEN_NOT_PRESENT every\n");
    const auto burst = Clock::now();
    // Real sessions open = C_OpenSession calls that reached the module - C_CloseSession calls.
    const auto open_sessions = [&] {
        return f.stat("calls", "C_OpenSession") - f.stat("injected", "C_OpenSession") -
               f.stat("calls", "C_CloseSession");
    };
    ASSERT_TRUE(wait_until([&] { return open_sessions() == 0; }, 5s)) << f.stats();
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 503; }, 1s));
    f.control("C_Login hang\n");
    const auto hang = Clock::now();
    ASSERT_TRUE(wait_until([&] { return f.stat("hanging", "C_Login") >= 1; }, 3s)) << f.stats();
    const auto hanging = Clock::now();
    ASSERT_TRUE(wait_until([&] { return load.answered(503, hanging); }, kCallTimeout + 2s));
    throughout(1s, [&] {
        const auto t = Clock::now();
        EXPECT_EQ(f.daemon().ops_get("/healthz").status, 200u);
        EXPECT_EQ(f.readyz(), 503u);
        EXPECT_LT(ms(Clock::now() - t), 1000);
    });
    EXPECT_NE(f.daemon().ops_get("/readyz").body.find("hsm: hsm."), std::string::npos);
    EXPECT_TRUE(wait_until([&] { return f.stat("hanging", "C_Login") >= 1; }, 2s)) << f.stats();

    f.control("");
    const auto released = Clock::now();
    ASSERT_TRUE(wait_until([&] { return f.stat("hanging", "C_Login") == 0; }, 2s)) << f.stats();
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 200; }, 5s));
    const long ready_after = ms(Clock::now() - released);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, released + 50ms); }, 5s));
    std::cerr << "login hang: /readyz 200 " << ready_after << " ms and 201 "
              << ms(Clock::now() - released) << " ms after the release\n";
    load.stop();

    auto answers = load.answers();
    for (const auto& a : answers) {
        // No signature succeeds while the burst or the hang lasts.
        if (a.start >= burst + 50ms && a.end <= released) {
            EXPECT_EQ(a.status, 503u) << a.code;
        }
        // While C_Login hangs: the deadline answers, within it.
        if (a.start >= hanging && a.end <= released) {
            EXPECT_EQ(a.code, "hsm.timeout");
        }
        if (a.start >= hang && a.start + kCallTimeout + 1s < released) {
            EXPECT_LE(ms(a.end - a.start), ms(kCallTimeout + 1s)) << a.status << " " << a.code;
        }
    }
    expect_only(answers, {{201, ""}, {503, "hsm."}});
    EXPECT_TRUE(wait_until([&] { return f.stat("calls", "C_Login") > 0; }, 2s)) << f.stats();
    check_audit(f, answers);
}

// The SoftHSM token directory renamed away for about 5 s under load, then put back. (The tests
// run as root, for whom chmod 000 changes nothing, so the directory is renamed.) SoftHSM loses
// the token in-process for good — C_GetTokenInfo answers CKR_GENERAL_ERROR even after the files
// are back — and the token re-initializes the module once no call is in flight (docs/hsm.md,
// "Fault recovery").
TEST_F(HsmFaults, TokenDirectoryGoneAnswers503ThenRecoversWithoutRestart) {
    FaultyDaemon f(*deployment_, "tokendir");
    Load load(f.daemon(), 2);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, Clock::now() - 10s); }, 5s));

    const auto dir = deployment_->token().token_dir();
    const std::filesystem::path away = dir.string() + ".away";
    struct Restore {
        std::filesystem::path from, to;
        ~Restore() {
            std::error_code ec;
            if (std::filesystem::exists(from, ec)) std::filesystem::rename(from, to, ec);
        }
    } restore{away, dir};
    std::filesystem::rename(dir, away);
    const auto fault = Clock::now();
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 503; }, 2s));
    ASSERT_TRUE(wait_until([&] { return load.answered(503, fault + 50ms); }, 2s));
    EXPECT_NE(f.daemon().ops_get("/readyz").body.find("hsm: hsm.token_lost"), std::string::npos)
        << f.daemon().ops_get("/readyz").body;
    // The directory stays away for 5 s: not ready all along.
    throughout(fault + 5s - Clock::now(), [&] { EXPECT_EQ(f.readyz(), 503u); });
    std::filesystem::rename(away, dir);
    const auto cleared = Clock::now();
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 200; }, 5s)) << f.daemon().log();
    const long ready_after = ms(Clock::now() - cleared);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, cleared + 50ms); }, 5s));
    std::cerr << "token directory: /readyz 200 " << ready_after << " ms and 201 "
              << ms(Clock::now() - cleared) << " ms after it came back\n";
    load.stop();

    auto answers = load.answers();
    for (const auto& a : answers) {
        if (a.start >= fault + 50ms && a.end <= cleared) {
            EXPECT_EQ(a.status, 503u) << a.code;
            EXPECT_EQ(a.code, "hsm.token_lost");
        }
    }
    expect_only(answers, {{201, ""}, {503, "hsm."}});
    const std::string log = f.daemon().log();
    EXPECT_NE(log.find("hsm fault hsm.token_lost: C_GetTokenInfo returned CKR_GENERAL_ERROR"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("hsm recovery: re-initialized the PKCS#11 module"), std::string::npos)
        << log;
    check_audit(f, answers);
}

TEST_F(HsmFaults, SlowSignaturesStillSucceed) {
    FaultyDaemon f(*deployment_, "slow");
    f.control("C_Sign delay=5ms\n");
    Load load(f.daemon(), 2);
    ASSERT_TRUE(wait_until([&] { return f.stat("delayed", "C_Sign") >= 40; }, 10s)) << f.stats();
    EXPECT_EQ(f.readyz(), 200u);
    load.stop();
    auto answers = load.answers();
    expect_only(answers, {{201, ""}});
    check_audit(f, answers);
}

// The disk stops answering fdatasync for about 3 s under a signing load (libfsfault.so preloaded
// into the daemon, every fdatasync blocked: audit segments and checkpoints alike, as a frozen
// disk would). The audit log's deadline (audit.sync_timeout) answers every signing request in
// flight within it, 503 audit.sync_timeout; /readyz says why; health and reads keep answering.
// Once the disk answers again, readiness and signing return without a restart (docs/audit.md,
// "A sync past its deadline").
TEST_F(HsmFaults, AuditSyncPastItsDeadlineAnswers503AndNotReadyThenRecoversWithoutRestart) {
    constexpr auto kSyncTimeout = 500ms;  // audit.sync_timeout (at least 100ms)
    FaultyDaemon f(*deployment_, "fsync",
                   "  sync_timeout: " + std::to_string(kSyncTimeout.count()) + "ms\n",
                   kWithFsFault);
    Load load(f.daemon(), 2);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, Clock::now() - 10s); }, 5s));
    // The library is in place: a 201's entry went through its fdatasync.
    ASSERT_GT(f.fs_stat("calls", "fdatasync"), 0) << f.fs_stats();

    f.fs_control("fdatasync hang\n");
    const auto hang = Clock::now();
    ASSERT_TRUE(wait_until([&] { return f.fs_stat("hanging", "fdatasync") >= 1; }, 2s))
        << f.fs_stats();
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 503; }, kSyncTimeout + 1s))
        << f.daemon().ops_get("/readyz").body;
    const long not_ready_after = ms(Clock::now() - hang);
    EXPECT_EQ(f.daemon().ops_get("/readyz").body, "not ready: audit log: sync past deadline\n");
    ASSERT_TRUE(wait_until([&] { return load.answered(503, hang); }, kSyncTimeout + 1s));
    // Health, the JWKS and readiness answer at once while the disk stays frozen.
    long slowest_read = 0;
    while (Clock::now() - hang < 3s) {
        const auto t = Clock::now();
        EXPECT_EQ(f.daemon().ops_get("/healthz").status, 200u);
        auto jwks = f.daemon().request("license-server", "GET", "/.well-known/jwks.json");
        EXPECT_EQ(jwks.status, 200u);
        EXPECT_NE(jwks.body.find("\"kid\""), std::string::npos) << jwks.body;
        EXPECT_EQ(f.readyz(), 503u);
        slowest_read = std::max(slowest_read, ms(Clock::now() - t));
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_LT(slowest_read, 1000);
    EXPECT_GE(f.fs_stat("hanging", "fdatasync"), 1) << f.fs_stats();

    f.fs_control("");
    const auto released = Clock::now();
    ASSERT_TRUE(wait_until([&] { return f.fs_stat("hanging", "fdatasync") == 0; }, 2s))
        << f.fs_stats();
    ASSERT_TRUE(wait_until([&] { return f.readyz() == 200; }, 5s))
        << f.daemon().ops_get("/readyz").body;
    const long ready_after = ms(Clock::now() - released);
    ASSERT_TRUE(wait_until([&] { return load.answered(201, released + 50ms); }, 5s));
    const long signing_after = ms(Clock::now() - released);
    load.stop();

    auto answers = load.answers();
    long slowest = 0;
    std::size_t timed = 0;
    for (const auto& a : answers) {
        // Started while the disk was frozen and answered before it answered again: refused.
        if (a.start >= hang && a.end <= released) {
            EXPECT_EQ(a.status, 503u) << a.code;
            EXPECT_EQ(a.code, "audit.sync_timeout");
        }
        // In flight while the disk was frozen, with the deadline + 1 s of the freeze left.
        if (a.end >= hang && a.start + kSyncTimeout + 1s < released) {
            ++timed;
            slowest = std::max(slowest, ms(a.end - a.start));
            EXPECT_LE(ms(a.end - a.start), ms(kSyncTimeout + 1s)) << a.status << " " << a.code;
        }
    }
    EXPECT_GT(timed, 0u);
    expect_only(answers, {{201, ""}, {503, "audit.sync_timeout"}});
    RecordProperty("not_ready_after_ms", static_cast<int>(not_ready_after));
    RecordProperty("slowest_answer_ms", static_cast<int>(slowest));
    RecordProperty("ready_after_ms", static_cast<int>(ready_after));
    RecordProperty("signing_after_ms", static_cast<int>(signing_after));
    std::cerr << "audit sync hang: /readyz 503 " << not_ready_after << " ms into the hang; "
              << timed << " answers in flight, slowest " << slowest
              << " ms; health/JWKS/readyz slowest " << slowest_read << " ms; /readyz 200 "
              << ready_after << " ms and 201 " << signing_after << " ms after the release\n";

    const std::string log = f.daemon().log();
    EXPECT_NE(log.find("audit log: sync past deadline: write + fdatasync has taken more than " +
                       std::to_string(kSyncTimeout.count()) + "ms (audit.sync_timeout)"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("audit log: sync completed within the deadline again; appends resume"),
              std::string::npos)
        << log;
    EXPECT_EQ(log.find("fsfault:"), std::string::npos) << log;  // no malformed control line
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        if (line.find("audit log: sync") != std::string::npos) std::cerr << "  " << line << '\n';
    }
    check_audit(f, answers);
}

}  // namespace
}  // namespace licentra::test
