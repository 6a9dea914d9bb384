// PKCS#11 layer against a real SoftHSM2 token: each test gets its own fresh token.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "crypto/random.hpp"
#include "hsm/internal.hpp"
#include "hsm_test_util.hpp"
#include "support/key_capabilities.hpp"
#include "support/test_support.hpp"

namespace licentra::hsm {
namespace {

using core::ErrorKind;
using crypto::Algorithm;
using testing::OpenToken;

core::Bytes msg(std::string_view s) { return core::to_bytes(s); }

TokenOptions opts(std::string uri, std::optional<std::filesystem::path> pin = std::nullopt) {
    TokenOptions o;
    o.uri = std::move(uri);
    o.pin_file = std::move(pin);
    return o;
}

void expect_signs_and_verifies(Token& token, const KeyRef& key) {
    const auto m = msg("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJsaWNlbnNlIn0");
    auto sig = token.sign(licentra::test::sign_capability(key.name), key, m);
    ASSERT_TRUE(sig.ok()) << sig.error().to_string();
    if (crypto::raw_signature_size(key.algorithm) != 0) {
        EXPECT_EQ(sig->size(), crypto::raw_signature_size(key.algorithm));
    } else {
        EXPECT_EQ(sig->size(), 384U);  // RSA-3072
    }
    EXPECT_TRUE(key.public_key->verify(m, *sig).ok()) << key.label;
    std::string out;
    EXPECT_TRUE(testing::openssl_verifies(*key.public_key, m, *sig, &out)) << key.label << out;
    // The command-line check is real: a changed message does not verify.
    EXPECT_FALSE(testing::openssl_verifies(*key.public_key, msg("other"), *sig, &out));
}

TEST(HsmKeys, GeneratesEveryAlgorithmSignOnlyAndSignaturesVerifyInOpenSsl) {
    LICENTRA_REQUIRE_PROGRAM(openssl, "openssl");
    OpenToken t;
    const std::pair<const char*, Algorithm> algs[] = {{"ed", Algorithm::EdDSA},
                                                      {"p256", Algorithm::ES256},
                                                      {"p384", Algorithm::ES384},
                                                      {"rsa", Algorithm::PS256}};
    for (const auto& [name, alg] : algs) {
        auto key = t.token->generate_key(licentra::test::generate_capability(name), 1, alg);
        ASSERT_TRUE(key.ok()) << name << ": " << key.error().to_string();
        EXPECT_EQ(key->label, std::string("licentra/") + name + "/v1");
        EXPECT_EQ(key->algorithm, alg);
        EXPECT_EQ(key->id.size(), 16U);
        expect_signs_and_verifies(*t.token, *key);

        // The private value never leaves the token (PKCS#11 v2.40 §4.9: a sensitive
        // attribute answers CKR_ATTRIBUTE_SENSITIVE).
        const CK_ATTRIBUTE_TYPE secret = alg == Algorithm::PS256 ? CKA_PRIVATE_EXPONENT : CKA_VALUE;
        EXPECT_EQ(detail::read_private_attribute(*t.token, *key, secret), CKR_ATTRIBUTE_SENSITIVE)
            << name;
        if (alg == Algorithm::PS256) {
            EXPECT_EQ(detail::read_private_attribute(*t.token, *key, CKA_PRIME_1),
                      CKR_ATTRIBUTE_SENSITIVE);
        }

        // Loading runs the same checks and yields the same public key.
        auto loaded = t.token->load_key(name, 1);
        ASSERT_TRUE(loaded.ok()) << loaded.error().to_string();
        EXPECT_EQ(loaded->public_key->spki_der(), key->public_key->spki_der());
        EXPECT_EQ(loaded->id, key->id);
        expect_signs_and_verifies(*t.token, *loaded);
    }
    auto list = t.token->list_keys("licentra/");
    ASSERT_TRUE(list.ok()) << list.error().to_string();
    ASSERT_EQ(list->size(), 4U);
    EXPECT_EQ((*list)[0].label, "licentra/ed/v1");
    EXPECT_EQ((*list)[0].algorithm, Algorithm::EdDSA);
    EXPECT_EQ((*list)[3].label, "licentra/rsa/v1");
    EXPECT_EQ((*list)[3].algorithm, Algorithm::PS256);
    for (const auto& k : *list) {
        EXPECT_TRUE(k.has_private && k.has_public) << k.label;
        EXPECT_EQ(k.id_hex.size(), 32U);
    }
    EXPECT_EQ(t.token->list_keys("licentra/p")->size(), 2U);
}

TEST(HsmKeys, RefusesAnExistingLabel) {
    OpenToken t;
    ASSERT_TRUE(
        t.token->generate_key(licentra::test::generate_capability("dup"), 1, Algorithm::ES256)
            .ok());
    auto again =
        t.token->generate_key(licentra::test::generate_capability("dup"), 1, Algorithm::EdDSA);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().kind, ErrorKind::conflict);
    EXPECT_EQ(again.error().code, "hsm.label_exists");
    EXPECT_EQ(t.token->list_keys()->size(), 1U);
}

TEST(HsmKeys, RefusesAtLoadAnExtractableKeyMadeByAnotherTool) {
    LICENTRA_REQUIRE_PROGRAM(tool, "pkcs11-tool");
    test::SoftHsmToken fixture;
    // Throwaway test PIN on argv: acceptable for this test only.
    std::string out;
    ASSERT_EQ(
        test::run_command({tool, "--module", test::SoftHsmToken::module_path(), "--token-label",
                           fixture.token_label(), "--login", "--pin", fixture.user_pin(),
                           "--keypairgen", "--key-type", "EC:prime256v1", "--label",
                           "licentra/bad/v1", "--id", "01", "--extractable", "--usage-sign"},
                          &out),
        0)
        << out;
    auto module = Module::load(test::SoftHsmToken::module_path());
    ASSERT_TRUE(module.ok());
    auto token = Token::open(*module, opts(fixture.uri()));
    ASSERT_TRUE(token.ok()) << token.error().to_string();
    auto key = (*token)->load_key("licentra/bad/v1");
    ASSERT_FALSE(key.ok());
    EXPECT_EQ(key.error().kind, ErrorKind::integrity);
    EXPECT_EQ(key.error().code, "hsm.key_attributes");
    EXPECT_NE(key.error().message.find("CKA_EXTRACTABLE is true"), std::string::npos)
        << key.error().message;
    // The listing still shows it, so an operator can find and remove it.
    EXPECT_EQ((*token)->list_keys()->size(), 1U);
}

TEST(HsmLogin, WrongPinFailsOnceWithASingleLogin) {
    test::SoftHsmToken fixture;
    const auto wrong = fixture.dir() / "wrong.pin";
    test::write_file(wrong, "not-the-pin\n", 0600);
    auto module = Module::load(test::SoftHsmToken::module_path());
    ASSERT_TRUE(module.ok());
    const auto before = detail::login_calls();
    auto token = Token::open(*module, opts(fixture.uri(), wrong));
    ASSERT_FALSE(token.ok());
    EXPECT_EQ(token.error().code, "hsm.pin_incorrect");
    EXPECT_EQ(token.error().kind, ErrorKind::hsm_unavailable);
    EXPECT_NE(token.error().message.find("CKR_PIN_INCORRECT"), std::string::npos);
    EXPECT_EQ(token.error().message.find("not-the-pin"), std::string::npos);
    EXPECT_EQ(detail::login_calls() - before, 1U);
    // The correct PIN still works afterwards (one failure did not lock the token).
    auto good = Token::open(*module, opts(fixture.uri()));
    EXPECT_TRUE(good.ok()) << good.error().to_string();
}

TEST(HsmLogin, RefusesAPinFileReadableByOthers) {
    test::SoftHsmToken fixture;
    ASSERT_EQ(::chmod(fixture.pin_file().c_str(), 0644), 0);
    auto module = Module::load(test::SoftHsmToken::module_path());
    ASSERT_TRUE(module.ok());
    const auto before = detail::login_calls();
    auto token = Token::open(*module, opts(fixture.uri()));
    ASSERT_FALSE(token.ok());
    EXPECT_EQ(token.error().code, "secret.permissions");
    EXPECT_EQ(detail::login_calls(), before);
}

TEST(HsmUri, MalformedUrisSaySo) {
    test::SoftHsmToken fixture;
    auto module = Module::load(test::SoftHsmToken::module_path());
    ASSERT_TRUE(module.ok());
    for (const std::string uri : {"token=x", "pkcs11:token=%zz", "pkcs11:token=a;object=key",
                                  "pkcs11:token=a?pin-value=1234",
                                  "pkcs11:token=a?pin-source=relative.pin", "pkcs11:bogus=1"}) {
        auto token = Token::open(*module, opts(uri));
        ASSERT_FALSE(token.ok()) << uri;
        EXPECT_EQ(token.error().kind, ErrorKind::usage) << uri;
        const bool says =
            token.error().message.find("malformed PKCS#11 URI") != std::string::npos ||
            token.error().code == "hsm.uri_pin_value";
        EXPECT_TRUE(says) << uri << " -> " << token.error().to_string();
    }
}

TEST(HsmUri, UriMatchingNoTokenSaysWhatItLookedFor) {
    test::SoftHsmToken fixture;
    auto module = Module::load(test::SoftHsmToken::module_path());
    ASSERT_TRUE(module.ok());
    auto token = Token::open(*module, opts("pkcs11:token=nope;serial=1234"));
    ASSERT_FALSE(token.ok());
    EXPECT_EQ(token.error().kind, ErrorKind::not_found);
    EXPECT_EQ(token.error().code, "hsm.token_not_found");
    EXPECT_NE(token.error().message.find("token label 'nope'"), std::string::npos)
        << token.error().message;
    EXPECT_NE(token.error().message.find("serial '1234'"), std::string::npos);
    // Selection is by label among several tokens; model and manufacturer match too.
    fixture.add_token("second");
    module->reset();
    module = Module::load(test::SoftHsmToken::module_path());
    ASSERT_TRUE(module.ok());
    auto ok = Token::open(*module, opts("pkcs11:model=SoftHSM%20v2;token=second?pin-source=file:" +
                                        fixture.pin_file().string()));
    ASSERT_TRUE(ok.ok()) << ok.error().to_string();
    EXPECT_EQ((*ok)->label(), "second");
    auto ambiguous = Token::open(
        *module, opts("pkcs11:model=SoftHSM%20v2?pin-source=file:" + fixture.pin_file().string()));
    ASSERT_FALSE(ambiguous.ok());
    EXPECT_EQ(ambiguous.error().code, "hsm.token_ambiguous");
}

TEST(HsmPool, EightThreadsThroughFourSessionsAllVerify) {
    OpenToken t(4);
    auto key =
        t.token->generate_key(licentra::test::generate_capability("pool"), 1, Algorithm::ES256);
    ASSERT_TRUE(key.ok()) << key.error().to_string();
    std::atomic<int> failures{0};
    std::atomic<int> verified{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([&, i] {
            for (int j = 0; j < 500; ++j) {
                const auto m = msg("thread " + std::to_string(i) + " message " + std::to_string(j));
                auto sig = t.token->sign(licentra::test::sign_capability(key->name), *key, m);
                if (!sig || !key->public_key->verify(m, *sig).ok()) {
                    ++failures;
                } else {
                    ++verified;
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(verified.load(), 4000);
}

TEST(HsmPool, SessionsClosedBehindThePoolsBackAreRecovered) {
    OpenToken t(4);
    auto key =
        t.token->generate_key(licentra::test::generate_capability("fault"), 1, Algorithm::EdDSA);
    ASSERT_TRUE(key.ok()) << key.error().to_string();
    ASSERT_TRUE(t.token->ensure_hmac_key("licentra/audit-hmac").ok());
    const auto before_epoch = t.token->state().epoch.load();
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0};
    std::atomic<int> done{0};
    std::string first_error;
    std::mutex err_mu;
    // SoftHSM frees a session's state in C_CloseAllSessions even while another thread is
    // inside a call on it (a crash, not an error), so the side door closes the sessions
    // between operations: it pauses new operations, waits for those in flight, strikes and
    // lets the callers go on. The pooled sessions are open and logged in when it strikes.
    std::mutex gate_mu;
    std::condition_variable gate_cv;
    bool paused = false;
    int in_flight = 0;
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i) {
        threads.emplace_back([&, i] {
            while (!stop.load()) {
                const auto m = msg("m" + std::to_string(i));
                {
                    std::unique_lock l(gate_mu);
                    gate_cv.wait(l, [&] { return !paused; });
                    ++in_flight;
                }
                auto sig = t.token->sign(licentra::test::sign_capability(key->name), *key, m);
                auto mac = t.token->hmac_sha256("licentra/audit-hmac", m);
                {
                    std::lock_guard l(gate_mu);
                    --in_flight;
                }
                gate_cv.notify_all();
                if (!sig || !key->public_key->verify(m, *sig).ok() || !mac) {
                    std::lock_guard lock(err_mu);
                    if (first_error.empty()) {
                        first_error = !sig ? sig.error().to_string()
                                           : (!mac ? mac.error().to_string() : "verify");
                    }
                    ++failures;
                }
                ++done;
            }
        });
    }
    // A side door: the same function list, another caller closing every session of the slot
    // (PKCS#11 v2.40 §5.6 C_CloseAllSessions), which also logs the token out.
    CK_FUNCTION_LIST* fl = t.module->state().fl;
    const CK_SLOT_ID slot = t.token->state().slot;
    // Traffic between strikes: each round waits for ten more completed operations.
    auto ten_more = [&] {
        const int from = done.load();
        const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (done.load() < from + 10 && std::chrono::steady_clock::now() < limit) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    };
    for (int round = 0; round < 3; ++round) {
        ten_more();
        std::unique_lock side_door(gate_mu);
        paused = true;
        gate_cv.wait(side_door, [&] { return in_flight == 0; });
        const CK_RV rv = fl->C_CloseAllSessions(slot);
        paused = false;
        side_door.unlock();
        gate_cv.notify_all();
        ASSERT_EQ(rv, CKR_OK);
    }
    ten_more();
    stop = true;
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0) << first_error;
    EXPECT_GT(done.load(), 30);
    EXPECT_GT(t.token->state().epoch.load(), before_epoch);  // logged in again
    // Single callers after the fault work too.
    EXPECT_TRUE(t.token->sign(licentra::test::sign_capability(key->name), *key, msg("after")).ok());
}

TEST(HsmKeys, AKeyCapabilityWorksOnlyForTheKeyItNames) {
    using licentra::test::destroy_capability;
    using licentra::test::generate_capability;
    using licentra::test::sign_capability;
    OpenToken t;
    // Generation names no key but the capability's: the key it makes is the one granted.
    auto key = t.token->generate_key(generate_capability("mine"), 1, Algorithm::EdDSA);
    ASSERT_TRUE(key.ok()) << key.error().to_string();
    EXPECT_EQ(key->label, "licentra/mine/v1");
    auto sig = t.token->sign(sign_capability("other"), *key, msg("m"));
    ASSERT_FALSE(sig.ok());
    EXPECT_EQ(sig.error().code, "hsm.capability_mismatch");
    EXPECT_EQ(sig.error().kind, ErrorKind::usage);
    auto destroyed = t.token->destroy_private_key(destroy_capability("other"), key->label);
    ASSERT_FALSE(destroyed.ok());
    EXPECT_EQ(destroyed.error().code, "hsm.capability_mismatch");
    // The key is intact, and the probe's self-test needs no capability.
    EXPECT_TRUE(t.token->sign(sign_capability("mine"), *key, msg("m")).ok());
    EXPECT_TRUE(t.token->self_test(*key).ok());
}

TEST(HsmKeys, DestroyedPrivateKeyCannotSignButPublicKeyRemains) {
    OpenToken t;
    auto key =
        t.token->generate_key(licentra::test::generate_capability("gone"), 2, Algorithm::EdDSA);
    ASSERT_TRUE(key.ok());
    ASSERT_TRUE(
        t.token->destroy_private_key(licentra::test::destroy_capability("gone"), "licentra/gone/v2")
            .ok());
    auto sig = t.token->sign(licentra::test::sign_capability(key->name), *key, msg("x"));
    ASSERT_FALSE(sig.ok());
    EXPECT_EQ(sig.error().kind, ErrorKind::not_found) << sig.error().to_string();
    auto list = t.token->list_keys();
    ASSERT_EQ(list->size(), 1U);
    EXPECT_FALSE((*list)[0].has_private);
    EXPECT_TRUE((*list)[0].has_public);
    auto pub = t.token->public_key("licentra/gone/v2");
    ASSERT_TRUE(pub.ok()) << pub.error().to_string();
    EXPECT_EQ(pub->spki_der(), key->public_key->spki_der());
    EXPECT_EQ(t.token->load_key("licentra/gone/v2").error().kind, ErrorKind::not_found);
    EXPECT_EQ(
        t.token->destroy_private_key(licentra::test::destroy_capability("gone"), "licentra/gone/v2")
            .error()
            .kind,
        ErrorKind::not_found);
}

TEST(HsmSignerTest, SignsThroughTheCryptoSignerInterface) {
    OpenToken t;
    auto key =
        t.token->generate_key(licentra::test::generate_capability("audit"), 1, Algorithm::EdDSA);
    ASSERT_TRUE(key.ok());
    std::unique_ptr<crypto::Signer> signer =
        std::make_unique<HsmSigner>(t.token, *key, licentra::test::sign_capability("audit"));
    EXPECT_EQ(signer->algorithm(), Algorithm::EdDSA);
    auto sig = signer->sign(msg("checkpoint"));
    ASSERT_TRUE(sig.ok());
    EXPECT_TRUE(signer->public_key().verify(msg("checkpoint"), *sig).ok());
}

TEST(HsmData, WritesReadsReplacesListsAndDeletes) {
    OpenToken t;
    EXPECT_FALSE(t.token->read_data("licentra/state/a/v1")->has_value());
    ASSERT_TRUE(t.token->write_data("licentra/state/a/v1", msg("pre-active")).ok());
    ASSERT_TRUE(t.token->write_data("licentra/state/a/v2", msg("x")).ok());
    ASSERT_TRUE(t.token->write_data("licentra/other", msg("y")).ok());
    EXPECT_EQ(**t.token->read_data("licentra/state/a/v1"), msg("pre-active"));
    ASSERT_TRUE(t.token->write_data("licentra/state/a/v1", msg("active")).ok());
    EXPECT_EQ(**t.token->read_data("licentra/state/a/v1"), msg("active"));
    auto list = t.token->list_data("licentra/state/");
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->size(), 2U);  // the replaced object is gone
    EXPECT_EQ((*list)[0].first, "licentra/state/a/v1");
    EXPECT_EQ((*list)[0].second, msg("active"));
    // Empty values are values.
    ASSERT_TRUE(t.token->write_data("licentra/state/a/v2", {}).ok());
    EXPECT_TRUE(t.token->read_data("licentra/state/a/v2")->value().empty());
    ASSERT_TRUE(t.token->delete_data("licentra/state/a/v1").ok());
    EXPECT_FALSE(t.token->read_data("licentra/state/a/v1")->has_value());
    EXPECT_TRUE(t.token->delete_data("licentra/state/a/v1").ok());
    EXPECT_EQ(t.token->list_data("licentra/")->size(), 2U);
}

TEST(HsmData, ASecondTokenHandleSeesWritesAtOnce) {
    OpenToken t;
    TokenOptions o;
    o.uri = t.fixture.uri();
    auto other = Token::open(t.module, o);
    ASSERT_TRUE(other.ok());
    ASSERT_TRUE(t.token->write_data("licentra/state/k", msg("1")).ok());
    EXPECT_EQ(**(*other)->read_data("licentra/state/k"), msg("1"));
    ASSERT_TRUE((*other)->write_data("licentra/state/k", msg("2")).ok());
    EXPECT_EQ(**t.token->read_data("licentra/state/k"), msg("2"));
}

TEST(HsmHmac, IsDeterministicPerKeyAndKeysDiffer) {
    OpenToken t;
    ASSERT_TRUE(t.token->ensure_hmac_key("licentra/hmac/a").ok());
    ASSERT_TRUE(t.token->ensure_hmac_key("licentra/hmac/a").ok());  // idempotent
    ASSERT_TRUE(t.token->ensure_hmac_key("licentra/hmac/b").ok());
    auto a1 = t.token->hmac_sha256("licentra/hmac/a", msg("customer-42"));
    auto a2 = t.token->hmac_sha256("licentra/hmac/a", msg("customer-42"));
    auto a3 = t.token->hmac_sha256("licentra/hmac/a", msg("customer-43"));
    auto b1 = t.token->hmac_sha256("licentra/hmac/b", msg("customer-42"));
    ASSERT_TRUE(a1.ok() && a2.ok() && a3.ok() && b1.ok()) << a1.error().to_string();
    EXPECT_EQ(a1->size(), 32U);
    EXPECT_EQ(*a1, *a2);
    EXPECT_NE(*a1, *a3);
    EXPECT_NE(*a1, *b1);
    EXPECT_EQ(t.token->hmac_sha256("licentra/hmac/none", msg("x")).error().kind,
              ErrorKind::not_found);
    // A second handle (a restarted daemon) finds the same key: same pseudonyms.
    TokenOptions o;
    o.uri = t.fixture.uri();
    auto other = Token::open(t.module, o);
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(*(*other)->hmac_sha256("licentra/hmac/a", msg("customer-42")), *a1);
}

TEST(HsmPool, BusyPoolAnswersLimitAfterTheWaitBound) {
    OpenToken t(1);
    auto key =
        t.token->generate_key(licentra::test::generate_capability("busy"), 1, Algorithm::ES256);
    ASSERT_TRUE(key.ok());
    auto lease = t.token->state().acquire();  // hold the only session
    ASSERT_TRUE(lease.ok());
    t.token->state().options.acquire_timeout = std::chrono::milliseconds(50);
    auto sig = t.token->sign(licentra::test::sign_capability(key->name), *key, msg("x"));
    ASSERT_FALSE(sig.ok());
    EXPECT_EQ(sig.error().kind, ErrorKind::overloaded);  // 503, not the caller's 429
    EXPECT_EQ(sig.error().code, "hsm.pool_busy");
}

// A view reload asked while a call is in flight: new calls wait for it to drain and for the
// module to be re-initialized, then succeed; none fails because of the reload.
TEST(HsmPool, CallsDuringAViewReloadWaitForItInsteadOfFailing) {
    OpenToken t(2);
    auto key =
        t.token->generate_key(licentra::test::generate_capability("reload"), 1, Algorithm::ES256);
    ASSERT_TRUE(key.ok());
    std::optional<detail::Lease> in_flight;
    {
        auto lease = t.token->state().acquire();
        ASSERT_TRUE(lease.ok());
        in_flight.emplace(std::move(*lease));
    }
    t.token->reload_view("a test asked for it");
    core::Result<core::Bytes> sig = core::make_error(ErrorKind::internal, "test.unset", "unset");
    std::thread caller([&] {
        sig =
            t.token->sign(licentra::test::sign_capability(key->name), *key, msg("while reloading"));
    });
    auto waiting = [&] {
        std::lock_guard lock(t.token->state().mu);
        return t.token->state().reload_waiters;
    };
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (waiting() == 0 && std::chrono::steady_clock::now() < limit) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(waiting(), 1u);  // the caller waits for the call in flight
    in_flight.reset();
    caller.join();
    ASSERT_TRUE(sig.ok()) << sig.error().to_string();
    std::lock_guard lock(t.token->state().mu);
    EXPECT_EQ(t.token->state().reinits, 1u);
    EXPECT_EQ(t.token->state().reload_waiters, 0u);
}

// The process-wide metrics count every call, its failures by CKR_* name, and the session waits.
TEST(HsmMetrics, CountsCallsFailuresByCkrAndSessionWaits) {
    OpenToken t(2);
    auto key =
        t.token->generate_key(licentra::test::generate_capability("metrics"), 1, Algorithm::EdDSA);
    ASSERT_TRUE(key.ok()) << key.error().to_string();
    auto& m = metrics();
    const auto signs = m.operations.at({"C_Sign", "ok"}).value();
    const auto waits = m.session_wait.snapshot().count;
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(t.token->sign(licentra::test::sign_capability(key->name), *key, msg("m")).ok());
    EXPECT_EQ(m.operations.at({"C_Sign", "ok"}).value(), signs + 3);
    EXPECT_EQ(m.session_wait.snapshot().count, waits + 3);

    // A sensitive attribute read fails with CKR_ATTRIBUTE_SENSITIVE, a request error.
    const auto sensitive = m.errors.at({"CKR_ATTRIBUTE_SENSITIVE"}).value();
    const auto requests = m.operations.at({"C_GetAttributeValue", "request"}).value();
    EXPECT_EQ(detail::read_private_attribute(*t.token, *key, CKA_VALUE), CKR_ATTRIBUTE_SENSITIVE);
    EXPECT_EQ(m.errors.at({"CKR_ATTRIBUTE_SENSITIVE"}).value(), sensitive + 1);
    EXPECT_EQ(m.operations.at({"C_GetAttributeValue", "request"}).value(), requests + 1);

    // Pool states: one session lent out, the others idle.
    {
        auto lease = t.token->state().acquire();
        ASSERT_TRUE(lease.ok());
        const auto p = t.token->pool_stats();
        EXPECT_EQ(p.in_use, 1u);
        EXPECT_EQ(p.suspect, 0u);
        EXPECT_LE(p.idle, 1u);
    }
    EXPECT_EQ(t.token->pool_stats().in_use, 0u);
}

}  // namespace
}  // namespace licentra::hsm
