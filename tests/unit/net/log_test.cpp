#include "net/log.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace licentra::net {
namespace {

using core::LogLevel;

nlohmann::json members(std::string_view line) {
    return nlohmann::json::parse("{" + json_members(line) + "}");
}

TEST(OperationalLog, EachKnownLineHasItsStableEventAndLevel) {
    struct Case {
        std::string_view line;
        std::string_view event;
        LogLevel level;
    };
    const Case cases[] = {
        {"net: TLS handshake failed from 127.0.0.1:4000: no certificate", "tls.handshake_failed",
         LogLevel::warning},
        {"hsm fault hsm.device_unavailable: C_Sign returned CKR_DEVICE_ERROR on token t",
         "hsm.fault", LogLevel::error},
        {"hsm fault hsm.device_unavailable: recovered after 812 ms", "hsm.recovered",
         LogLevel::info},
        {"audit log failed closed: audit.io_error: write: EFBIG (File too large)", "audit.failed",
         LogLevel::error},
        {"audit log: sync completed within the deadline again; appends resume",
         "audit.sync_recovered", LogLevel::info},
        {"audit log /var/lib/licentra/audit: 12 entries; checkpoint verifier key k", "audit.opened",
         LogLevel::info},
        {"audit checkpoint: signed and anchored again (tree size 9)", "audit.checkpoint_recovered",
         LogLevel::info},
        {"audit checkpoint: signing failed: hsm.timeout", "audit.checkpoint_failed",
         LogLevel::error},
        {"keys: version 3 of a is being created by another replica; this one stands back",
         "keys.claim_lost", LogLevel::info},
        {"keys: an older build left two pairs", "keys.state", LogLevel::warning},
        {"keys: claim on version 4 of a took 612 ms, longer than cluster.claim_write_bound "
         "(500 ms); withdrawn",
         "keys.claim_withdrawn", LogLevel::warning},
        {"requests: decide claim on request 0a1b took 731 ms, longer than "
         "cluster.claim_write_bound (500 ms); withdrawn",
         "requests.claim_withdrawn", LogLevel::warning},
        {"requests: executing request 0a1b failed for a passing cause (hsm_unavailable: "
         "hsm.key_readback: x); it stays pending and is executed later",
         "requests.execution_deferred", LogLevel::warning},
        {"requests: cannot list the approval requests on the token (x)", "requests.list_failed",
         LogLevel::error},
        {"requests: the approval requests can be listed again", "requests.list_recovered",
         LogLevel::info},
        {"requests: could not claim request 0a1b in 5 tries (2 withdrawn as too slow, 3 lost to "
         "other claims); it stays pending and the periodic tick of every replica tries again",
         "requests.claim_contended", LogLevel::warning},
        {"ready: API on 127.0.0.1:8443, operations on 127.0.0.1:9090", "daemon.ready",
         LogLevel::info},
        {"SIGHUP: policy reload failed; the old policy stays in force:\nline 3",
         "reload.policy_failed", LogLevel::error},
        {"something new", "daemon.message", LogLevel::info},
    };
    for (const auto& c : cases) {
        const auto got = classify_line(c.line);
        EXPECT_EQ(got.event, c.event) << c.line;
        EXPECT_EQ(got.level, c.level) << c.line;
    }
}

TEST(OperationalLog, JsonMembersCarryTheMessageAndTheCkrAndErrnoNames) {
    auto j = members("hsm fault hsm.token_lost: C_GetTokenInfo returned CKR_GENERAL_ERROR on x");
    EXPECT_EQ(j["event"], "hsm.fault");
    EXPECT_EQ(j["msg"], "hsm fault hsm.token_lost: C_GetTokenInfo returned CKR_GENERAL_ERROR on x");
    EXPECT_EQ(j["ckr"], "CKR_GENERAL_ERROR");
    EXPECT_FALSE(j.contains("errno"));

    j = members("audit log failed closed: audit.io_error: fdatasync: ENOSPC (No space left)");
    EXPECT_EQ(j["errno"], "ENOSPC");
    EXPECT_FALSE(j.contains("ckr"));

    // "EXACTLY" and "Error (" are words, not errno names.
    j = members("keys: EXACTLY one; Error (x)");
    EXPECT_FALSE(j.contains("errno"));
}

TEST(OperationalLog, QuotesNewlinesControlCharactersAndBadUtf8StayOneValidJsonLine) {
    const std::string line = "SIGHUP: policy reload failed:\n\"a\"\\b\x01 \xff\xfe end";
    const std::string text = json_members(line);
    EXPECT_EQ(text.find('\n'), std::string::npos);
    const auto j = nlohmann::json::parse("{" + text + "}");
    const std::string msg = j["msg"];
    EXPECT_EQ(msg.substr(0, 29), "SIGHUP: policy reload failed:");
    EXPECT_NE(msg.find("\n\"a\"\\b\x01 "), std::string::npos);
    EXPECT_NE(msg.find("end"), std::string::npos);
}

}  // namespace
}  // namespace licentra::net
