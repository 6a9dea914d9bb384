#include "audit/entry.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "audit_test_support.hpp"

namespace licentra::audit {
namespace {

Entry full_entry() {
    Entry e = testing::sample_entry(7);
    e.seq = 42;
    e.time = *core::parse_rfc3339_ms("2026-01-02T03:04:05.678Z");
    e.reason = "policy.ok";
    e.policy_sha256 = std::string(64, 'b');
    e.request_digest = std::string(64, 'c');
    e.pseudonyms = std::map<std::string, std::string>{{"sub", std::string(64, 'd')}};
    return e;
}

TEST(AuditEntry, SerializesCanonicallyWithSortedKeysAndNoWhitespace) {
    auto line = serialize_entry(full_entry());
    ASSERT_TRUE(line.ok()) << line.error().to_string();
    EXPECT_EQ(*line, R"({"action":"token.sign","claims":["exp","features","seats","sub"],)"
                     R"("key":"acme-prod","kid":"NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",)"
                     R"("policy_sha256":")" +
                         std::string(64, 'b') +
                         R"(","principal":"license-server-eu","pseudonyms":{"sub":")" +
                         std::string(64, 'd') + R"("},"reason":"policy.ok","request_digest":")" +
                         std::string(64, 'c') +
                         R"(","request_id":"req-7","result":"allowed",)"
                         R"("seq":42,"time":"2026-01-02T03:04:05.678Z","token_sha256":")" +
                         std::string(64, 'a') + R"(","version":3})");
}

TEST(AuditEntry, ParsesBackToTheSameEntryAndBytes) {
    const Entry e = full_entry();
    const std::string line = *serialize_entry(e);
    auto parsed = parse_entry(line);
    ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
    EXPECT_EQ(*parsed, e);
    EXPECT_EQ(*serialize_entry(*parsed), line);

    Entry minimal;
    minimal.principal = "p";
    minimal.action = "a";
    minimal.result = Outcome::denied;
    EXPECT_EQ(
        *serialize_entry(minimal),
        R"({"action":"a","principal":"p","result":"denied","seq":0,"time":"1970-01-01T00:00:00.000Z"})");
    EXPECT_EQ(*parse_entry(*serialize_entry(minimal)), minimal);
}

TEST(AuditEntry, APruneEntryNamesItsRangeAndBothFieldsComeTogether) {
    Entry e;
    e.principal = "system";
    e.action = "audit.prune";
    e.result = Outcome::allowed;
    e.pruned_first = 12;
    e.pruned_count = 30;
    const std::string line = *serialize_entry(e);
    EXPECT_EQ(line,
              R"({"action":"audit.prune","principal":"system","pruned_count":30,"pruned_first":12,)"
              R"("result":"allowed","seq":0,"time":"1970-01-01T00:00:00.000Z"})");
    auto parsed = parse_entry(line);
    ASSERT_TRUE(parsed.ok()) << parsed.error().to_string();
    EXPECT_EQ(*parsed, e);
    auto tmpl = serialize_entry_template(e);
    ASSERT_TRUE(tmpl.ok());

    Entry alone = e;
    alone.pruned_count.reset();
    EXPECT_EQ(validate_entry(alone).error().code, "audit.entry_invalid");
    alone = e;
    alone.pruned_first.reset();
    EXPECT_FALSE(validate_entry(alone).ok());
    Entry zero = e;
    zero.pruned_count = 0;
    EXPECT_FALSE(validate_entry(zero).ok());
    Entry overflow = e;
    overflow.pruned_first = std::numeric_limits<std::uint64_t>::max();
    overflow.pruned_count = 1;
    EXPECT_FALSE(validate_entry(overflow).ok());
    // A line with only one of them, or a count of 0, does not parse.
    EXPECT_FALSE(parse_entry(R"({"action":"audit.prune","principal":"system","pruned_first":12,)"
                             R"("result":"allowed","seq":0,"time":"1970-01-01T00:00:00.000Z"})")
                     .ok());
    EXPECT_FALSE(parse_entry(R"({"action":"audit.prune","principal":"system","pruned_count":0,)"
                             R"("pruned_first":12,"result":"allowed","seq":0,)"
                             R"("time":"1970-01-01T00:00:00.000Z"})")
                     .ok());
}

TEST(AuditEntry, RejectsEveryNonCanonicalOrUnknownForm) {
    const std::string good = *serialize_entry(full_entry());
    auto replace = [&](const std::string& from, const std::string& to) {
        std::string s = good;
        const auto pos = s.find(from);
        EXPECT_NE(pos, std::string::npos) << from;
        s.replace(pos, from.size(), to);
        return s;
    };
    const std::pair<const char*, std::string> cases[] = {
        {"whitespace", replace(R"("seq":42)", R"("seq": 42)")},
        {"unknown field", replace(R"("seq":42)", R"("seq":42,"zzz":"x")")},
        {"message field", replace(R"("seq":42)", R"("message":"hello","seq":42)")},
        {"escaped char", replace(R"("principal":"license)", R"("principal":"\u006cicense)")},
        {"float seq", replace(R"("seq":42)", R"("seq":42.0)")},
        {"exponent seq", replace(R"("seq":42)", R"("seq":4.2e1)")},
        {"negative version", replace(R"("version":3)", R"("version":-3)")},
        {"string seq", replace(R"("seq":42)", R"("seq":"42")")},
        {"duplicate key", replace(R"("seq":42)", R"("seq":42,"seq":42)")},
        {"key order", replace(R"("action":"token.sign","claims")", R"("claims")")},
        {"uppercase hex", replace(std::string(64, 'a'), std::string(64, 'A'))},
        {"short hex", replace(std::string(64, 'a'), std::string(63, 'a'))},
        {"bad result", replace(R"("allowed")", R"("ok")")},
        {"time without ms", replace("05.678Z", "05Z")},
        {"time with offset", replace("05.678Z", "05.678+00:00")},
        {"space in principal", replace("license-server-eu", "license server")},
        {"unsorted claims", replace(R"(["exp","features")", R"(["features","exp")")},
        {"claims not array", replace(R"(["exp","features","seats","sub"])", R"("exp")")},
        {"array top level", "[" + good + "]"},
        {"trailing garbage", good + "x"},
        {"truncated", good.substr(0, good.size() - 1)},
        {"empty", ""},
    };
    for (const auto& [name, line] : cases) {
        auto r = parse_entry(line);
        ASSERT_FALSE(r.ok()) << name;
        EXPECT_EQ(r.error().kind, core::ErrorKind::integrity) << name;
    }
}

TEST(AuditEntry, ValidationRejectsFreeFormText) {
    Entry e = testing::sample_entry(1);
    e.reason = "the user typed: alice@example.com password hunter2";
    EXPECT_FALSE(validate_entry(e).ok());
    e = testing::sample_entry(1);
    e.principal = "";
    EXPECT_FALSE(validate_entry(e).ok());
    e = testing::sample_entry(1);
    e.claims = std::vector<std::string>{"sub", "sub"};
    EXPECT_FALSE(validate_entry(e).ok());
    e = testing::sample_entry(1);
    e.key = std::string(300, 'k');
    EXPECT_FALSE(validate_entry(e).ok());
    e = testing::sample_entry(1);
    e.request_id = "caf\xc3\xa9";
    EXPECT_FALSE(validate_entry(e).ok());
    EXPECT_EQ(serialize_entry(e).error().code, "audit.entry_invalid");
}

TEST(EntryTemplate, HeadSeqTimeTailIsTheCanonicalLine) {
    Entry full = testing::sample_entry(7);
    full.reason = "policy.claim_forbidden";
    full.pseudonyms = std::map<std::string, std::string>{{"sub", std::string(64, 'b')}};
    Entry minimal;
    minimal.principal = "p";
    minimal.action = "a";
    for (Entry e : {full, minimal}) {
        auto t = serialize_entry_template(e);
        ASSERT_TRUE(t.ok());
        for (std::uint64_t seq : {0ULL, 9ULL, 10ULL, 123456789ULL, 18446744073709551615ULL}) {
            e.seq = seq;
            e.time = core::from_unix_millis(1700000000123 + static_cast<std::int64_t>(seq % 1000));
            char mid[kMaxSeqTimeBytes];
            const std::size_t n = format_seq_time(seq, core::format_rfc3339_ms(e.time), mid);
            EXPECT_EQ(t->head + std::string(mid, n) + t->tail, *serialize_entry(e));
        }
    }
    Entry bad = minimal;
    bad.principal = "has space";
    EXPECT_FALSE(serialize_entry_template(bad).ok());
}

}  // namespace
}  // namespace licentra::audit
