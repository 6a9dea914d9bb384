// libp11fault.so in front of a real SoftHSM2 token, loaded through the project's own
// hsm::Module and hsm::Token: each test gets a fresh token and its own control and stats files.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>

#include "hsm/hsm.hpp"
#include "support/key_capabilities.hpp"
#include "support/softhsm.hpp"
#include "support/test_support.hpp"

namespace licentra::hsm {
namespace {

using core::ErrorKind;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr auto kWaitBound = std::chrono::seconds(20);

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

bool has_line(const std::string& text, const std::string& line) {
    return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

class P11Fault : public ::testing::Test {
  protected:
    void SetUp() override {
        control_ = dir_.path() / "p11fault.ctl";
        stats_ = dir_.path() / "p11fault.stats";
        write_control("");
        ::setenv("P11FAULT_MODULE", test::SoftHsmToken::module_path().c_str(), 1);
        ::setenv("P11FAULT_CONTROL", control_.c_str(), 1);
        ::setenv("P11FAULT_STATS", stats_.c_str(), 1);
        ::setenv("P11FAULT_SEED", "7", 1);
        auto m = Module::load(P11FAULT_LIBRARY);
        ASSERT_TRUE(m.ok()) << m.error().to_string();
        module_ = *m;
        TokenOptions o;
        o.uri = token_.uri();
        o.pool_size = 1;  // one session: every sign reuses the session an earlier fault left
        o.backoff.initial = milliseconds(1);
        o.backoff.max = milliseconds(4);
        o.backoff.attempts = 3;
        auto t = Token::open(module_, o);
        ASSERT_TRUE(t.ok()) << t.error().to_string();
        token_handle_ = std::move(t).value();
        auto k = token_handle_->generate_key(licentra::test::generate_capability("fault"), 1,
                                             crypto::Algorithm::EdDSA);
        ASSERT_TRUE(k.ok()) << k.error().to_string();
        key_ = *k;
    }

    void TearDown() override {
        write_control("");  // releases any call still hanging
        token_handle_.reset();
        module_.reset();
    }

    // Atomically (rename over the old file), as the documentation recommends.
    void write_control(const std::string& text) const {
        const auto tmp = dir_.path() / "p11fault.ctl.new";
        test::write_file(tmp, text);
        std::filesystem::rename(tmp, control_);
    }

    // Rewritten in place (same inode; same size when the texts have equal length).
    void overwrite_control(const std::string& text) const {
        std::ofstream out(control_, std::ios::binary | std::ios::trunc);
        out << text;
    }

    // Waits for the statistics file to contain the line; never sleeps and hopes.
    void wait_for_stats(const std::string& line) const {
        const auto deadline = Clock::now() + kWaitBound;
        std::string text;
        while (Clock::now() < deadline) {
            text = slurp(stats_);
            if (has_line(text, line)) return;
            std::this_thread::sleep_for(milliseconds(2));
        }
        FAIL() << "stats never showed '" << line << "'; last:\n" << text;
    }

    // Waits until no line of the statistics starts with prefix (the file is rewritten by the
    // module's own thread shortly after the change).
    void expect_stats_lack(const std::string& prefix) const {
        const auto deadline = Clock::now() + kWaitBound;
        std::string text;
        while (Clock::now() < deadline) {
            text = slurp(stats_);
            if (("\n" + text).find("\n" + prefix) == std::string::npos) return;
            std::this_thread::sleep_for(milliseconds(2));
        }
        FAIL() << "stats still show '" << prefix << "'; last:\n" << text;
    }

    core::Result<core::Bytes> sign() {
        return token_handle_->sign(licentra::test::sign_capability("fault"), key_, message_);
    }

    void expect_signs() {
        auto sig = sign();
        ASSERT_TRUE(sig.ok()) << sig.error().to_string();
        EXPECT_TRUE(key_.public_key->verify(message_, *sig).ok());
    }

    void expect_fails(ErrorKind kind, const std::string& code) {
        auto sig = sign();
        ASSERT_FALSE(sig.ok());
        EXPECT_EQ(sig.error().kind, kind) << sig.error().to_string();
        EXPECT_EQ(sig.error().code, code) << sig.error().to_string();
    }

    test::SoftHsmToken token_;
    test::TempDir dir_;
    std::filesystem::path control_;
    std::filesystem::path stats_;
    std::shared_ptr<Module> module_;
    std::shared_ptr<Token> token_handle_;
    KeyRef key_;
    const core::Bytes message_ = core::to_bytes("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJmYXVsdCJ9");
};

TEST_F(P11Fault, PassesEveryCallThroughWhenNoRuleMatches) {
    write_control("# nothing yet\nC_DigestInit rv=CKR_DEVICE_ERROR every\n");
    for (int i = 0; i < 3; ++i) expect_signs();
    // Key generation and its self-test went through the fault module too.
    wait_for_stats("calls C_GenerateKeyPair 1");
    wait_for_stats("rules 1");
    expect_stats_lack("injected");
}

TEST_F(P11Fault, EveryInjectedReturnValueReachesTheCallerAsItsErrorKind) {
    struct Case {
        const char* rv;
        ErrorKind kind;
        const char* code;
        const char* injected;  // C_Sign faults: session and device faults are retried once
    };
    const Case cases[] = {
        {"CKR_DEVICE_ERROR", ErrorKind::hsm_unavailable, "hsm.device_unavailable", "2"},
        {"CKR_DEVICE_REMOVED", ErrorKind::hsm_unavailable, "hsm.device_unavailable", "4"},
        {"CKR_SESSION_HANDLE_INVALID", ErrorKind::hsm_unavailable, "hsm.session_broken", "6"},
        {"CKR_USER_NOT_LOGGED_IN", ErrorKind::hsm_unavailable, "hsm.session_broken", "8"},
        {"CKR_MECHANISM_INVALID", ErrorKind::usage, "hsm.request_rejected", "9"},
        {"CKR_FUNCTION_FAILED", ErrorKind::internal, "hsm.internal", "10"},
        {"0x80000001", ErrorKind::internal, "hsm.internal", "11"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.rv);
        write_control(std::string("C_Sign rv=") + c.rv + " every\n");
        expect_fails(c.kind, c.code);
        wait_for_stats(std::string("injected C_Sign ") + c.injected);
        // Without the rule the same (single) session signs again: the injected error ended
        // the real signing operation as PKCS#11 says an error does.
        write_control("");
        expect_signs();
    }
}

TEST_F(P11Fault, AnAttributeReadOfAnObjectInFluxIsAMissingKeyNotARejectedRequest) {
    // The handle goes stale, and the key's CKA_ID cannot be read while it is looked up again
    // (SoftHSM answers so for an object another thread is writing at that instant): the key
    // is missing for now (the daemon answers 503), never a rejected request (400).
    write_control(
        "C_SignInit rv=CKR_OBJECT_HANDLE_INVALID nth=1\n"
        "C_GetAttributeValue rv=CKR_ATTRIBUTE_VALUE_INVALID every\n");
    expect_fails(ErrorKind::not_found, "hsm.key_not_found");
    wait_for_stats("injected C_GetAttributeValue 1");
    write_control("");
    expect_signs();
}

TEST_F(P11Fault, WildcardFailsEveryFunction) {
    write_control("* rv=CKR_TOKEN_NOT_PRESENT every\n");
    auto sig = sign();
    ASSERT_FALSE(sig.ok());
    EXPECT_EQ(sig.error().kind, ErrorKind::hsm_unavailable) << sig.error().to_string();
    // C_SignInit failed first; the retry on a fresh session never got past C_OpenSession,
    // attempted as often as the bounded backoff allows.
    wait_for_stats("injected C_SignInit 1");
    wait_for_stats("injected C_OpenSession 3");
    write_control("");
    expect_signs();
}

TEST_F(P11Fault, NthFailsExactlyTheThirdCall) {
    write_control("C_Sign rv=CKR_FUNCTION_FAILED nth=3\n");
    expect_signs();
    expect_signs();
    expect_fails(ErrorKind::internal, "hsm.internal");
    expect_signs();
    expect_signs();
    expect_signs();
    wait_for_stats("injected C_Sign 1");
}

TEST_F(P11Fault, ProbabilityOneAlwaysFailsAndZeroNeverDoes) {
    write_control("C_Sign rv=CKR_MECHANISM_INVALID probability=1.0\n");
    for (int i = 0; i < 20; ++i) expect_fails(ErrorKind::usage, "hsm.request_rejected");
    wait_for_stats("injected C_Sign 20");
    write_control("C_Sign rv=CKR_MECHANISM_INVALID probability=0.0\n");
    for (int i = 0; i < 20; ++i) expect_signs();
    wait_for_stats("injected C_Sign 20");
}

TEST_F(P11Fault, DelayHoldsTheCallBackThenCallsTheRealFunction) {
    write_control("C_Sign delay=20ms\n");
    const auto start = Clock::now();
    expect_signs();
    EXPECT_GE(Clock::now() - start, milliseconds(20));
    wait_for_stats("delayed C_Sign 1");
    expect_stats_lack("injected");
}

TEST_F(P11Fault, HangBlocksTheSignUntilTheControlFileReleasesIt) {
    write_control("C_Sign hang\n");
    std::atomic<bool> returned{false};
    auto result = std::async(std::launch::async, [&] {
        auto r = sign();
        returned = true;
        return r;
    });
    wait_for_stats("hanging C_Sign 1");
    EXPECT_FALSE(returned.load());  // observed hanging inside C_Sign, not yet returned
    // Adding an unrelated rule keeps the hang: only removing the hang rule releases it.
    write_control("C_Sign hang\nC_DigestInit rv=CKR_DEVICE_ERROR\n");
    wait_for_stats("rules 2");
    EXPECT_FALSE(returned.load());
    write_control("# released\n");
    ASSERT_EQ(result.wait_for(kWaitBound), std::future_status::ready);
    auto sig = result.get();
    ASSERT_TRUE(sig.ok()) << sig.error().to_string();
    EXPECT_TRUE(key_.public_key->verify(message_, *sig).ok());
    wait_for_stats("hangs C_Sign 1");
    expect_stats_lack("hanging");
}

TEST_F(P11Fault, MalformedLineIsReportedOnceWithItsNumberAndIgnored) {
    ::testing::internal::CaptureStderr();
    write_control(
        "# line 1\n"
        "C_Sign rv=CKR_NO_SUCH_THING every\n"
        "C_Sign rv=CKR_FUNCTION_FAILED every\n");
    expect_fails(ErrorKind::internal, "hsm.internal");
    expect_fails(ErrorKind::internal, "hsm.internal");
    const std::string err = ::testing::internal::GetCapturedStderr();
    const std::string where = control_.string() + ":2: ";
    const auto at = err.find(where);
    ASSERT_NE(at, std::string::npos) << err;
    EXPECT_NE(err.find("CKR_NO_SUCH_THING", at), std::string::npos) << err;
    EXPECT_EQ(err.find(where, at + 1), std::string::npos) << "reported twice:\n" << err;
    wait_for_stats("malformed 1");
    wait_for_stats("rules 1");
    wait_for_stats("injected C_Sign 2");
}

TEST_F(P11Fault, ControlFileChangedInPlaceTakesEffectOnTheNextCall) {
    // Equal sizes, same inode, written within one timestamp tick: only the contents differ.
    overwrite_control("C_Sign rv=0x00000006\n");  // CKR_FUNCTION_FAILED
    expect_fails(ErrorKind::internal, "hsm.internal");
    overwrite_control("C_Sign rv=0x00000070\n");  // CKR_MECHANISM_INVALID
    expect_fails(ErrorKind::usage, "hsm.request_rejected");
    overwrite_control("#   no faults now   \n");
    expect_signs();
    std::filesystem::remove(control_);  // a missing file means no rules
    expect_signs();
    write_control("C_Sign rv=CKR_FUNCTION_FAILED nth=1\n");
    expect_fails(ErrorKind::internal, "hsm.internal");
    expect_signs();
    // Loads: the empty file at start, A, B, the comment, the missing file, the nth rule.
    wait_for_stats("loads 6");
}

}  // namespace
}  // namespace licentra::hsm
