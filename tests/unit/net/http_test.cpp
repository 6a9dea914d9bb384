#include "net/http.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace licentra::net {
namespace {

TEST(Problem, HasRfc9457MembersAndStableType) {
    const Response r = problem_response(ProblemKind::payload_too_large, "too big", "rid-1");
    EXPECT_EQ(r.status, 413u);
    EXPECT_EQ(r.content_type, "application/problem+json");
    const auto j = nlohmann::json::parse(r.body);
    EXPECT_EQ(j["type"], "https://licentra.dev/problems/payload-too-large");
    EXPECT_EQ(j["title"], "Payload too large");
    EXPECT_EQ(j["status"], 413);
    EXPECT_EQ(j["detail"], "too big");
    EXPECT_EQ(j["request_id"], "rid-1");
}

TEST(Problem, ExtensionsAreMergedButCannotOverrideStandardMembers) {
    const Response r = problem_response(ProblemKind::validation_failed, "bad claims", "r",
                                        R"({"violations":["exp too far"],"status":1})");
    const auto j = nlohmann::json::parse(r.body);
    EXPECT_EQ(j["status"], 422);
    EXPECT_EQ(j["violations"][0], "exp too far");
}

TEST(Problem, ErrorKindsMapToStatusesAndDenialIsNeverInternal) {
    struct Case {
        core::ErrorKind kind;
        unsigned status;
        const char* slug;
    };
    for (const Case& c : {Case{core::ErrorKind::usage, 400, "bad-request"},
                          Case{core::ErrorKind::denied, 403, "forbidden"},
                          Case{core::ErrorKind::not_found, 404, "not-found"},
                          Case{core::ErrorKind::conflict, 409, "conflict"},
                          Case{core::ErrorKind::hsm_unavailable, 503, "hsm-unavailable"},
                          Case{core::ErrorKind::unavailable, 503, "unavailable"},
                          Case{core::ErrorKind::integrity, 500, "integrity"},
                          Case{core::ErrorKind::limit, 429, "rate-limited"},
                          Case{core::ErrorKind::overloaded, 503, "overloaded"},
                          Case{core::ErrorKind::internal, 500, "internal"}}) {
        const Response r = error_response(core::make_error(c.kind, "x.reason", "message"), "rid");
        const auto j = nlohmann::json::parse(r.body);
        EXPECT_EQ(r.status, c.status);
        EXPECT_EQ(j["type"], std::string("https://licentra.dev/problems/") + c.slug);
        EXPECT_EQ(j["code"], "x.reason");
        EXPECT_EQ(j["detail"], "message");
    }
}

TEST(RequestId, IsRandom32Hex) {
    const std::string a = new_request_id();
    const std::string b = new_request_id();
    EXPECT_EQ(a.size(), 32u);
    EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_NE(a, b);
}

TEST(ParseRequest, ParsesMethodTargetQueryAndBody) {
    const Limits limits;
    auto r = parse_request(
        "POST /v1/tokens?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\n\r\n{}",
        limits);
    ASSERT_TRUE(r.ok()) << r.error().to_string();
    EXPECT_EQ(r->method, "POST");
    EXPECT_EQ(r->target, "/v1/tokens?x=1");
    EXPECT_EQ(r->path, "/v1/tokens");
    EXPECT_EQ(r->query, "x=1");
    EXPECT_EQ(r->content_type, "application/json");
    EXPECT_EQ(r->body, "{}");
}

TEST(ParseRequest, EnforcesLimitsAndRejectsGarbage) {
    Limits limits;
    limits.header_limit = 64;
    limits.body_limit = 4;
    auto big_header =
        parse_request("GET / HTTP/1.1\r\nX: " + std::string(200, 'a') + "\r\n\r\n", limits);
    ASSERT_FALSE(big_header.ok());
    EXPECT_EQ(big_header.error().code, "net.header_too_large");
    auto big_body = parse_request("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n12345", limits);
    ASSERT_FALSE(big_body.ok());
    EXPECT_EQ(big_body.error().code, "net.body_too_large");
    auto garbage = parse_request("\x16\x03\x01garbage\r\n\r\n", limits);
    ASSERT_FALSE(garbage.ok());
    EXPECT_EQ(garbage.error().code, "net.http_malformed");
    auto folded = parse_request("GET / HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n", limits);
    ASSERT_FALSE(folded.ok());
    EXPECT_EQ(folded.error().code, "net.http_obs_fold");
    EXPECT_FALSE(has_obsolete_line_folding("GET / HTTP/1.1\r\nX-A: 1 2\r\n\r\nbody\r\n x"));
    EXPECT_TRUE(has_obsolete_line_folding("GET / HTTP/1.1\r\nX-A: 1\r\n\t2"));
    auto partial = parse_request("GET / HTTP/1.1\r\nHost:", limits);
    ASSERT_FALSE(partial.ok());
}

TEST(JsonMediaType, ApplicationJsonWithAnOptionalUtf8CharsetInAnyCase) {
    for (const char* ok : {"application/json", "Application/JSON", "application/json;charset=utf-8",
                           "application/json; charset=UTF-8",
                           "application/json ; Charset=\"utf-8\"", " application/json\t"}) {
        EXPECT_TRUE(is_json_media_type(ok)) << ok;
    }
    for (const char* bad :
         {"", "application/jsonx", "application/json-seq", "text/json",
          "application/x-www-form-urlencoded", "application/json; charset=latin1",
          "application/json; version=2", "application/json;", "application/json; charset",
          "application/json; charset=utf-8; x=y", "application/*"}) {
        EXPECT_FALSE(is_json_media_type(bad)) << bad;
    }
}

TEST(ErrorResponse, ARetryAfterOfTheErrorBecomesTheHeader) {
    auto limited = core::make_error(core::ErrorKind::limit, "policy.rate_limited", "slow down");
    limited.retry_after = std::chrono::seconds(7);
    const Response r = error_response(limited, "rid");
    EXPECT_EQ(r.status, 429u);
    ASSERT_EQ(std::count_if(r.headers.begin(), r.headers.end(),
                            [](const auto& h) { return h.name == "Retry-After"; }),
              1);
    for (const auto& h : r.headers) {
        if (h.name == "Retry-After") {
            EXPECT_EQ(h.value, "7");
        }
    }
    const Response plain =
        error_response(core::make_error(core::ErrorKind::limit, "x.y", "no hint"), "rid");
    EXPECT_TRUE(std::none_of(plain.headers.begin(), plain.headers.end(),
                             [](const auto& h) { return h.name == "Retry-After"; }));
}

}  // namespace
}  // namespace licentra::net
