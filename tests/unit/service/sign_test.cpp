// Signing a token as the service's use case runs it, on the use-case fixture (an in-memory key
// store, a real audit log behind a journal that can fail, an injected clock): a token leaves
// only with its durable entry, at the index it names; a log that cannot record stops signing
// before the HSM is asked; an entry that fails drops the signature; an HSM failure is answered
// and audited.
#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "token/jws.hpp"
#include "unit/service/use_cases.hpp"

namespace licentra::service {
namespace {

using namespace std::chrono_literals;
using fake::named;

class ServiceSign : public fake::UseCases {
  protected:
    // Signs a valid product-a token as the license server; the answer, however the service
    // completes it (at once, or on the log's thread once the entry is durable).
    core::Result<IssuedToken> sign() {
        std::promise<core::Result<IssuedToken>> answer;
        auto future = answer.get_future();
        const std::int64_t exp =
            std::chrono::duration_cast<std::chrono::seconds>((now() + 1h).time_since_epoch())
                .count();
        service_->sign_token(Caller{named("ls"), "req-1"}, "product-a",
                             nlohmann::json{{"sub", "ab"}, {"exp", exp}},
                             [&answer](core::Result<IssuedToken> r) { answer.set_value(r); });
        // Bounded: a durable append completes within the log's sync, on its thread.
        EXPECT_EQ(future.wait_for(30s), std::future_status::ready);
        return future.get();
    }
    // Whether the log holds `n` durable entries within a bound (polled: the log announces no
    // single entry).
    bool wait_for_entries(std::uint64_t n) {
        const auto give_up = std::chrono::steady_clock::now() + 30s;
        while (audit_.log->size() < n) {
            if (std::chrono::steady_clock::now() > give_up) return false;
            std::this_thread::sleep_for(1ms);
        }
        return true;
    }
};

TEST_F(ServiceSign, ATokenLeavesWithItsDurableEntryAtTheIndexItNames) {
    const std::uint64_t start = audit_.log->size();
    auto issued = sign();
    ASSERT_TRUE(issued.ok()) << issued.error().to_string();
    EXPECT_EQ(issued->audit_index, start);
    EXPECT_EQ(audited(start), (std::vector<std::string>{"token.sign allowed ls v1"}));
    auto lines = audit_.log->read_entries(start, start + 1);
    ASSERT_TRUE(lines.ok());
    const nlohmann::json entry = nlohmann::json::parse(lines->front());
    EXPECT_EQ(entry["token_sha256"], token::token_sha256_hex(issued->token));
    EXPECT_EQ(entry["request_id"], "req-1");
    EXPECT_EQ(service_->stats().tokens_issued.load(), 1U);
}

TEST_F(ServiceSign, AnEntryThatIsNotDurableDropsTheSignature) {
    const std::uint64_t start = audit_.log->size();
    journal_->fail_append(1, core::make_error(core::ErrorKind::unavailable, "audit.log_failed",
                                              "injected: the disk is full"));
    auto issued = sign();
    ASSERT_FALSE(issued.ok());
    EXPECT_EQ(issued.error().code, "service.audit_unavailable");
    EXPECT_EQ(issued.error().kind, core::ErrorKind::unavailable);
    EXPECT_EQ(store_->calls("sign"), 1);  // signed, never returned
    EXPECT_EQ(audit_.log->size(), start);
    EXPECT_EQ(service_->stats().tokens_issued.load(), 0U);
    EXPECT_EQ(service_->stats().failed.load(), 1U);
    // The next token is issued again.
    ASSERT_TRUE(sign().ok());
    EXPECT_EQ(audited(start), (std::vector<std::string>{"token.sign allowed ls v1"}));
}

TEST_F(ServiceSign, ALogThatCannotRecordStopsSigningBeforeTheHsm) {
    const std::uint64_t start = audit_.log->size();
    const int appends = journal_->appends();
    journal_->unhealthy = true;
    auto issued = sign();
    ASSERT_FALSE(issued.ok());
    EXPECT_EQ(issued.error().code, "service.audit_unavailable");
    EXPECT_EQ(store_->calls("sign"), 0);
    EXPECT_EQ(journal_->appends(), appends);  // not even the refusal: the log cannot take it
    EXPECT_EQ(audit_.log->size(), start);
}

TEST_F(ServiceSign, AnHsmFailureIsAnsweredAndAudited) {
    const std::uint64_t start = audit_.log->size();
    store_->fail("sign", 1,
                 core::make_error(core::ErrorKind::hsm_unavailable, "hsm.device_error",
                                  "injected: C_Sign returned CKR_DEVICE_ERROR"));
    auto issued = sign();
    ASSERT_FALSE(issued.ok());
    EXPECT_EQ(issued.error().code, "hsm.device_error");
    EXPECT_EQ(issued.error().kind, core::ErrorKind::hsm_unavailable);
    // The refusal's entry is appended without waiting: wait until it is durable.
    ASSERT_TRUE(wait_for_entries(start + 1));
    EXPECT_EQ(audited(start), (std::vector<std::string>{"token.sign failed ls"}));
    EXPECT_EQ(service_->stats().tokens_issued.load(), 0U);
}

TEST_F(ServiceSign, AnActiveKeyTheTokenDoesNotShowRightNowIsAnHsmFaultNotAMissingResource) {
    // The private key missing, or in flux while another writer has it: 503, never 404.
    for (const char* code : {"hsm.key_not_found", "hsm.object_gone"}) {
        SCOPED_TRACE(code);
        store_->fail("sign", 1,
                     core::make_error(core::ErrorKind::not_found, code, "injected: not visible"));
        auto issued = sign();
        ASSERT_FALSE(issued.ok());
        EXPECT_EQ(issued.error().code, code);
        EXPECT_EQ(issued.error().kind, core::ErrorKind::hsm_unavailable);
    }
    EXPECT_EQ(service_->stats().tokens_issued.load(), 0U);
}

}  // namespace
}  // namespace licentra::service
