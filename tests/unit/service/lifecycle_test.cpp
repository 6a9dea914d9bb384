// The key lifecycle under dual control as the service's use cases run it, on an injected clock,
// with request records in memory and key pairs in an in-memory key store (Ed25519 by OpenSSL):
// open -> approvals -> execution at exactly the quorum, every refusal on the way (the
// requester, a second approval by one officer, a closed request, a digest that does not match,
// a principal without the right), rejection, expiry at exactly the request's lifetime, an
// execution the HSM failed, retirement and destruction at exactly the instant the retired
// version's tokens expire, quorum 0, and what each leaves in the audit log (fixture:
// unit/service/use_cases.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "unit/service/use_cases.hpp"

namespace licentra::service {
namespace {

using namespace std::chrono_literals;

using fake::kClaims;
using fake::named;
using fake::officer;

class ServiceLifecycle : public fake::UseCases {
  protected:
    // Opens a rotation of product-a as off-a; returns its view.
    nlohmann::json open_rotation() {
        auto r = service_->open_request(Caller{officer('a'), "open"}, policy::Operation::rotate,
                                        "product-a", std::nullopt, false);
        EXPECT_TRUE(r.ok()) << r.error().to_string();
        return r ? *r : nlohmann::json::object();
    }
};

TEST_F(ServiceLifecycle, ARotationExecutesAtExactlyItsQuorumAsTheActOfTheLastApprover) {
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    const std::uint64_t start = audit_.log->size();
    const auto opened = open_rotation();
    const std::string id = opened["id"];
    EXPECT_EQ(opened["state"], "pending");
    EXPECT_EQ(opened["quorum"], 2);
    advance(1s);
    auto first = service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt);
    ASSERT_TRUE(first.ok()) << first.error().to_string();
    EXPECT_EQ((*first)["state"], "pending");  // one of two
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    advance(1s);
    auto second = service_->approve_request(Caller{officer('c'), "c"}, id,
                                            opened["digest"].get<std::string>());
    ASSERT_TRUE(second.ok()) << second.error().to_string();
    EXPECT_EQ((*second)["state"], "executed");
    EXPECT_EQ((*second)["result"]["version"], 2);
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active", "v2:pre-active"}));
    EXPECT_EQ(audited(start),
              (std::vector<std::string>{
                  "key.rotate.request allowed off-a", "key.rotate.approve allowed off-b",
                  "key.rotate.approve allowed off-c", "key.rotate allowed off-c v2",
                  "key.rotate.execute allowed off-c"}));
}

TEST_F(ServiceLifecycle, EveryRefusalOnTheWayIsExactAndChangesNothing) {
    const auto opened = open_rotation();
    const std::string id = opened["id"];
    // The requester never counts; a signer and an auditor hold no approval right.
    EXPECT_EQ(code_of(service_->approve_request(Caller{officer('a'), "a"}, id, std::nullopt)),
              "policy.requester_cannot_approve");
    EXPECT_EQ(code_of(service_->approve_request(Caller{named("ls"), "ls"}, id, std::nullopt)),
              "policy.action_not_granted");
    EXPECT_EQ(code_of(service_->approve_request(Caller{named("aud"), "aud"}, id, std::nullopt)),
              "policy.action_not_granted");
    // A digest that is not the request's.
    EXPECT_EQ(
        code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::string(64, '0'))),
        "policy.request_digest_mismatch");
    ASSERT_EQ(code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt)),
              "ok");
    EXPECT_EQ(code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt)),
              "policy.duplicate_approval");
    // Still pending with one approval, and only v1.
    auto view = service_->get_request(Caller{officer('c'), "c"}, id);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ((*view)["state"], "pending");
    EXPECT_EQ((*view)["approvals"].size(), 1u);
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
}

TEST_F(ServiceLifecycle, ARejectedRequestIsClosedForEveryone) {
    const std::uint64_t start = audit_.log->size();
    const std::string id = open_rotation()["id"];
    auto rejected = service_->reject_request(Caller{officer('b'), "b"}, id);
    ASSERT_TRUE(rejected.ok()) << rejected.error().to_string();
    EXPECT_EQ((*rejected)["state"], "rejected");
    EXPECT_EQ(code_of(service_->approve_request(Caller{officer('c'), "c"}, id, std::nullopt)),
              "policy.request_closed");
    EXPECT_EQ(code_of(service_->reject_request(Caller{officer('c'), "c"}, id)),
              "policy.request_closed");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    const auto entries = audited(start);
    ASSERT_GE(entries.size(), 2u);
    EXPECT_EQ(entries[1], "key.rotate.reject allowed off-b");
}

TEST_F(ServiceLifecycle, ARequestExpiresAtExactlyItsLifetimeAsSystem) {
    const std::string id = open_rotation()["id"];
    ASSERT_EQ(code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt)),
              "ok");
    const std::uint64_t before = audit_.log->size();
    advance(1h - 1ms);  // the last instant of its lifetime: still open
    service_->tick(now());
    auto view = service_->get_request(Caller{officer('c'), "c"}, id);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ((*view)["state"], "pending");
    advance(1ms);  // its lifetime passed: an approval now is refused, before any tick
    EXPECT_EQ(code_of(service_->approve_request(Caller{officer('c'), "c"}, id, std::nullopt)),
              "policy.request_expired");
    service_->tick(now());  // and the tick closes it, as system
    view = service_->get_request(Caller{officer('c'), "c"}, id);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ((*view)["state"], "expired");
    EXPECT_EQ(code_of(service_->approve_request(Caller{officer('c'), "c"}, id, std::nullopt)),
              "policy.request_closed");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    const auto entries = audited(before);
    EXPECT_NE(std::find(entries.begin(), entries.end(), "key.rotate.expire allowed system"),
              entries.end())
        << ::testing::PrintToString(entries);
}

// The HSM fails the key generation of the execution: the approval is recorded and answered
// with the deferral, the failed attempt is audited, and the request stays pending. The periodic
// tick then executes it as the act of the approver whose approval completed the quorum: the
// first tick past 4 x settle has the token read again (a replica whose view missed another's
// close would otherwise act on it), the next one executes.
TEST_F(ServiceLifecycle, AnExecutionTheHsmFailedIsDeferredAndTheTickCompletesIt) {
    const std::string id = open_rotation()["id"];
    ASSERT_EQ(code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt)),
              "ok");
    store_->fail(
        "generate_key", 1,
        core::make_error(core::ErrorKind::hsm_unavailable, "hsm.device_error", "injected"));
    const std::uint64_t before = audit_.log->size();
    auto approved = service_->approve_request(Caller{officer('c'), "c"}, id, std::nullopt);
    ASSERT_TRUE(approved.ok()) << approved.error().to_string();
    EXPECT_EQ((*approved)["state"], "pending");
    EXPECT_EQ((*approved)["execution_deferred"], "hsm.device_error");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    advance(4 * kClaims.settle + 1ms);  // past 4 x settle: the approvers' replicas had their time
    service_->tick(now());
    EXPECT_EQ(stand_.requests.reloads().size(), 1u);
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    advance(10ms);  // the next tick, within the re-read interval (6 x settle + 5 s)
    service_->tick(now());
    auto view = service_->get_request(Caller{officer('b'), "b"}, id);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ((*view)["state"], "executed");
    // The failed attempt's number stays taken (its claim may have been seen by others).
    EXPECT_EQ((*view)["result"]["version"], 3);
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active", "v3:pre-active"}));
    EXPECT_EQ(audited(before),
              (std::vector<std::string>{
                  "key.rotate.approve allowed off-c", "key.rotate.execute failed off-c",
                  "key.rotate allowed off-c v3", "key.rotate.execute allowed off-c"}));
}

// An object another replica changed while it was read is a passing cause too: the request is
// not closed as failed for it.
TEST_F(ServiceLifecycle, AnExecutionThatMetAVanishingObjectIsDeferred) {
    const std::string id = open_rotation()["id"];
    ASSERT_EQ(code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt)),
              "ok");
    store_->fail("generate_key", 1,
                 core::make_error(core::ErrorKind::not_found, "hsm.object_gone",
                                  "an object changed while it was read"));
    auto approved = service_->approve_request(Caller{officer('c'), "c"}, id, std::nullopt);
    ASSERT_TRUE(approved.ok()) << approved.error().to_string();
    EXPECT_EQ((*approved)["state"], "pending");
    EXPECT_EQ((*approved)["execution_deferred"], "hsm.object_gone");
    EXPECT_EQ(logged(), std::vector<std::string>{
                            "requests: executing request " + id +
                            " failed for a passing cause (not_found: hsm.object_gone: an object "
                            "changed while it was read); it stays pending and is executed later"});
}

// A token on which the requests cannot be listed stops the tick's work; that is logged once
// while it lasts, not at every tick, and again once the requests can be listed; then the tick
// works again (here: it counts the pending request for /metrics).
TEST_F(ServiceLifecycle, ATickThatCannotListTheRequestsSaysSoOnceAndCatchesUpAfterwards) {
    const std::string id = open_rotation()["id"];
    ASSERT_EQ(code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt)),
              "ok");
    stand_.requests.list_error =
        core::make_error(core::ErrorKind::hsm_unavailable, "hsm.device_error", "injected");
    const std::size_t before = logged().size();
    for (int i = 0; i < 3; ++i) {
        advance(1s);
        service_->tick(now());
    }
    EXPECT_EQ(logged().size(), before + 1);
    EXPECT_EQ(logged().back(),
              "requests: cannot list the approval requests on the token (hsm_unavailable: "
              "hsm.device_error: injected); expiries, executions and scheduled rotations wait "
              "until they can be");
    stand_.requests.list_error.reset();
    advance(1s);
    service_->tick(now());
    EXPECT_EQ(logged().size(), before + 2);
    EXPECT_EQ(logged().back(), "requests: the approval requests can be listed again");
    EXPECT_EQ(service_->pending_requests().at("product-a"), 1u);  // quorum 2: one approval
}

// Retire and destroy under the same dual control (default quorum 2): v1 retires at once; its
// destruction is refused while tokens it signed can still be valid (max_validity 30d +
// verify_grace 30d after the retirement) — the request closes as failed with the key
// manager's reason — and executes exactly at that instant, leaving no private key.
TEST_F(ServiceLifecycle, AVersionIsRetiredThenDestroyedOnlyOnceItsTokensHaveExpired) {
    auto dual = [&](policy::Operation op, unsigned version) -> core::Result<nlohmann::json> {
        auto opened =
            service_->open_request(Caller{officer('a'), "a"}, op, "product-a", version, false);
        if (!opened) return opened;
        const std::string id = (*opened)["id"];
        auto first = service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt);
        if (!first) return first;
        return service_->approve_request(Caller{officer('c'), "c"}, id, std::nullopt);
    };
    auto retired = dual(policy::Operation::retire, 1);
    ASSERT_TRUE(retired.ok()) << retired.error().to_string();
    EXPECT_EQ((*retired)["state"], "executed");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:retired"}));
    advance(60 * 24h - 1ms);  // the last instant a token v1 signed can still be valid
    auto early = dual(policy::Operation::destroy, 1);
    ASSERT_FALSE(early.ok());
    EXPECT_EQ(early.error().code, "keys.destroy_still_verifying");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:retired"}));
    EXPECT_TRUE(store_->has_private("licentra/product-a/v1"));
    advance(1ms);
    auto destroyed = dual(policy::Operation::destroy, 1);
    ASSERT_TRUE(destroyed.ok()) << destroyed.error().to_string();
    EXPECT_EQ((*destroyed)["state"], "executed");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:destroyed"}));
    EXPECT_FALSE(store_->has_private("licentra/product-a/v1"));
}

// With quorum 0 the requester alone decides: the request executes as it is opened.
TEST_F(ServiceLifecycle, AQuorumOfZeroExecutesAsTheRequestOpens) {
    auto engine = policy::test::load_ok(policy::test::mutate("rotate: {quorum: 2, lifetime: 1h}",
                                                             "rotate: {quorum: 0, lifetime: 1h}"));
    ASSERT_NE(engine, nullptr);
    holder_->replace(engine);
    auto opened = service_->open_request(Caller{officer('a'), "a"}, policy::Operation::rotate,
                                         "product-a", std::nullopt, false);
    ASSERT_TRUE(opened.ok()) << opened.error().to_string();
    EXPECT_EQ((*opened)["state"], "executed");
    EXPECT_EQ((*opened)["executed"], true);
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active", "v2:pre-active"}));
}

// A token too slow for the claim bound: every claim to close the request is withdrawn, which
// is safe (nobody closes it) and said in the log; the request stays pending, and a tick of a
// replica closes it once the token is fast again.
class SlowCloseClaims : public ServiceLifecycle {
  protected:
    SlowCloseClaims() { close_claims_ = keys::ClaimTiming{50ms, 100ms}; }
};

TEST_F(SlowCloseClaims, EveryWithdrawnClaimIsLoggedAndTheTickClosesTheRequestLater) {
    const std::string id = open_rotation()["id"];
    ASSERT_EQ(code_of(service_->approve_request(Caller{officer('b'), "b"}, id, std::nullopt)),
              "ok");
    stand_.requests.on_create = [](const std::string& name) {
        if (name.find("/close/") == std::string::npos) return;
        // A slow write: it returns only once the claim bound has passed.
        const auto start = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - start <= 50ms) std::this_thread::yield();
    };
    auto approved = service_->approve_request(Caller{officer('c'), "c"}, id, std::nullopt);
    ASSERT_TRUE(approved.ok()) << approved.error().to_string();
    EXPECT_EQ((*approved)["state"], "pending");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active"}));
    const auto lines = logged();
    ASSERT_EQ(lines.size(), 6u);
    const std::string withdrawn = "requests: close claim on request " + id + " took ";
    for (std::size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(lines[i].rfind(withdrawn, 0), 0u) << lines[i];
        EXPECT_NE(lines[i].find(" ms, longer than cluster.claim_write_bound (50 ms); withdrawn"),
                  std::string::npos)
            << lines[i];
    }
    EXPECT_EQ(lines[5], "requests: could not claim request " + id +
                            " in 5 tries (5 withdrawn as too slow, 0 lost to other claims); it "
                            "stays pending and the periodic tick of every replica tries again");

    stand_.requests.on_create = {};  // the token is fast again
    advance(4 * 100ms + 1ms);        // past 4 x settle: the approvers' replicas had their time
    service_->tick(now());           // reads the token again first
    advance(10ms);
    service_->tick(now());
    auto view = service_->get_request(Caller{officer('b'), "b"}, id);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ((*view)["state"], "executed");
    EXPECT_EQ(versions(), (std::vector<std::string>{"v1:active", "v2:pre-active"}));
    EXPECT_EQ(logged().size(), 6u);  // nothing more to say
}

}  // namespace
}  // namespace licentra::service
