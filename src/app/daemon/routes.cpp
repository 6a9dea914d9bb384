#include "app/daemon/routes.hpp"

#include <nlohmann/json.hpp>
#include <string_view>

#include "core/bytes.hpp"
#include "core/names.hpp"
#include "crypto/digest.hpp"
#include "net/query.hpp"
#include "token/strict_json.hpp"

namespace licentra::app {

using core::ErrorKind;
using core::make_error;
using net::ProblemKind;
using net::Request;
using net::Response;

namespace {

constexpr std::string_view kJson = "application/json";
// Request bodies nest no deeper than this (the claims of a token included).
constexpr std::size_t kMaxBodyDepth = 32;
constexpr std::string_view kKeysPrefix = "/v1/keys/";
constexpr std::string_view kRequestsPrefix = "/v1/requests/";
constexpr std::uint64_t kMaxEntriesPerRequest = 10000;

Response json_response(unsigned status, const nlohmann::json& body) {
    Response r;
    r.status = status;
    r.content_type = std::string(kJson);
    r.body = body.dump();
    return r;
}

Response text_response(std::string content_type, std::string body) {
    Response r;
    r.status = 200;
    r.content_type = std::move(content_type);
    r.body = std::move(body);
    return r;
}

// Whether an If-None-Match value names `etag` (RFC 9110 §13.1.2: "*", or a list of entity
// tags compared weakly).
bool if_none_match_matches(std::string_view header, std::string_view etag) {
    while (!header.empty()) {
        const auto comma = header.find(',');
        std::string_view tag = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
        while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
        while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
        if (tag == "*") return true;
        if (tag.starts_with("W/")) tag.remove_prefix(2);
        if (tag == etag) return true;
    }
    return false;
}

// The JWKS answer of the API and the public listener: Cache-Control from the publish-ahead
// period (Service::PublishedJwks), a strong ETag (the first 128 bits of the body's SHA-256),
// and 304 without a body when the client already holds that version.
Response jwks_response(const service::Service::PublishedJwks& jwks, const Request& req) {
    const std::string etag =
        "\"" + core::hex_encode(crypto::sha256(core::as_bytes(jwks.body))).substr(0, 32) + "\"";
    Response r;
    if (if_none_match_matches(req.if_none_match, etag)) {
        r.status = 304;
    } else {
        r = text_response(std::string(kJson), jwks.body);
    }
    r.headers.push_back(
        {"Cache-Control", "public, max-age=" + std::to_string(jwks.max_age.count())});
    r.headers.push_back({"ETag", etag});
    return r;
}

template <class T>
Response failure_response(const core::Result<T>& outcome, const std::string& request_id) {
    const core::Error& e = outcome.error();
    if (!e.violations.empty()) {  // a validation failure: RFC 9457 with every violation
        nlohmann::json violations = nlohmann::json::array();
        for (const auto& v : e.violations) {
            violations.push_back({{"claim", v.claim}, {"code", v.code}, {"message", v.message}});
        }
        nlohmann::json ext = {{"code", e.code}, {"violations", std::move(violations)}};
        return net::problem_response(ProblemKind::validation_failed, e.message, request_id,
                                     ext.dump());
    }
    return net::error_response(e, request_id);
}

Response bad_request(const std::string& detail, const std::string& request_id) {
    return net::problem_response(ProblemKind::bad_request, detail, request_id);
}

service::Caller caller_of(const Request& req) { return {req.identity, req.request_id}; }

// RFC 9110 §10.2.3: a 503 says when to come back. A refusal of the audit log while it is slow
// (a sync past its deadline) gets its own problem type and code.
Response with_retry_after(Response r, const AuditProbe& audit) {
    if (r.status != 503) return r;
    for (const auto& h : r.headers) {
        if (h.name == "Retry-After") return r;
    }
    std::chrono::seconds after{1};
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    if (body.is_object() && audit.slow && audit.slow()) {
        const auto code = body.value("code", std::string());
        if (code == "service.audit_unavailable" || code == "audit.sync_timeout") {
            body["type"] = std::string(net::kProblemTypeBase) + "audit-slow";
            body["title"] = "Audit log slow";
            body["code"] = "audit.sync_timeout";
            body["detail"] =
                "the audit log did not make entries durable within its deadline; no token issued";
            r.body = body.dump();
            after = std::max(audit.retry_after, std::chrono::seconds(1));
        }
    }
    r.headers.push_back({"Retry-After", std::to_string(after.count())});
    return r;
}

// The route template of a path, for the access log and the request metrics: one of a fixed
// set, so neither carries a key name, version or request id; "unmatched" for any other path.
std::string_view route_template(std::string_view path) {
    static constexpr std::string_view kFixed[] = {"/v1/tokens",
                                                  "/v1/tokens/receipt",
                                                  "/.well-known/jwks.json",
                                                  "/v1/keys",
                                                  "/v1/requests",
                                                  "/v1/audit/checkpoint",
                                                  "/v1/audit/entries",
                                                  "/v1/audit/proofs/inclusion",
                                                  "/v1/audit/proofs/consistency"};
    for (const auto fixed : kFixed) {
        if (path == fixed) return fixed;
    }
    if (path.starts_with(kKeysPrefix)) {
        const auto rest = path.substr(kKeysPrefix.size());
        const auto slash = rest.find('/');
        if (slash == std::string_view::npos) return "/v1/keys/{key}";
        const auto tail = rest.substr(slash);
        if (tail == "/rotations") return "/v1/keys/{key}/rotations";
        if (tail.starts_with("/versions/")) {
            const auto v = tail.substr(10);
            const auto verb = v.substr(std::min(v.find('/'), v.size()));
            if (verb == "/retire") return "/v1/keys/{key}/versions/{version}/retire";
            if (verb == "/destroy") return "/v1/keys/{key}/versions/{version}/destroy";
        }
        return "unmatched";
    }
    if (path.starts_with(kRequestsPrefix)) {
        const auto rest = path.substr(kRequestsPrefix.size());
        const auto slash = rest.find('/');
        if (slash == std::string_view::npos) return "/v1/requests/{id}";
        const auto verb = rest.substr(slash);
        if (verb == "/approve") return "/v1/requests/{id}/approve";
        if (verb == "/reject") return "/v1/requests/{id}/reject";
    }
    return "unmatched";
}

// Key names in paths: exactly the names the policy allows, nothing to decode.
bool valid_key_segment(std::string_view s) { return core::is_valid_name(s); }

class ApiHandler final : public net::Handler {
  public:
    ApiHandler(service::Service& service, service::Executor& blocking, AuditProbe audit)
        : service_(service),
          blocking_(blocking),
          audit_(std::make_shared<const AuditProbe>(std::move(audit))) {}

    void handle(Request req, std::function<void(Response)> answer) override {
        auto done = [audit = audit_, answer = std::move(answer), route = route_template(req.path),
                     principal = service_.principal_name(req.identity)](Response r) mutable {
            r.route = route;
            r.principal = std::move(principal);
            answer(with_retry_after(std::move(r), *audit));
        };
        const std::string& path = req.path;
        const bool get = req.method == "GET";
        if (path == "/v1/tokens") {
            if (req.method != "POST") return done(method_not_allowed(req, "POST"));
            return sign(std::move(req), std::move(done));
        }
        if (path == "/v1/tokens/receipt") {
            if (!get) return done(method_not_allowed(req, "GET"));
            return receipt(std::move(req), std::move(done));
        }
        if (path == "/.well-known/jwks.json") {
            if (!get) return done(method_not_allowed(req, "GET"));
            auto out = service_.jwks(caller_of(req));
            if (!out.ok()) return done(failure_response(out, req.request_id));
            return done(jwks_response(*out, req));
        }
        if (path == "/v1/keys") {
            if (!get) return done(method_not_allowed(req, "GET"));
            auto out = service_.list_keys(caller_of(req));
            if (!out.ok()) return done(failure_response(out, req.request_id));
            return done(json_response(200, *out));
        }
        if (path.rfind(kKeysPrefix, 0) == 0) {
            return key_routes(std::move(req), std::move(done));
        }
        if (path == "/v1/requests" || path.rfind(kRequestsPrefix, 0) == 0) {
            return request_routes(std::move(req), std::move(done));
        }
        if (path == "/v1/audit/checkpoint") {
            if (!get) return done(method_not_allowed(req, "GET"));
            auto out = service_.audit_checkpoint(caller_of(req));
            if (!out.ok()) return done(failure_response(out, req.request_id));
            return done(text_response("text/plain; charset=utf-8", std::move(*out)));
        }
        if (path == "/v1/audit/entries") {
            if (!get) return done(method_not_allowed(req, "GET"));
            // Reads log files: off the io threads.
            return offload(std::move(done), [this, req = std::move(req)] { return entries(req); });
        }
        if (path == "/v1/audit/proofs/inclusion") {
            if (!get) return done(method_not_allowed(req, "GET"));
            return done(two_numbers(req, "index", "size", [&](auto a, auto b) {
                auto out = service_.inclusion_proof(caller_of(req), a, b);
                if (!out.ok()) return failure_response(out, req.request_id);
                return json_response(200, *out);
            }));
        }
        if (path == "/v1/audit/proofs/consistency") {
            if (!get) return done(method_not_allowed(req, "GET"));
            return done(two_numbers(req, "first", "second", [&](auto a, auto b) {
                auto out = service_.consistency_proof(caller_of(req), a, b);
                if (!out.ok()) return failure_response(out, req.request_id);
                return json_response(200, *out);
            }));
        }
        done(not_found(req));
    }

  private:
    // Runs fn on the blocking pool and answers with its Response.
    template <class Fn>
    void offload(std::function<void(Response)> done, Fn fn) {
        auto shared_done = std::make_shared<std::function<void(Response)>>(std::move(done));
        if (!blocking_.post(
                [shared_done, fn = std::move(fn)]() mutable { (*shared_done)(fn()); })) {
            (*shared_done)(
                net::problem_response(ProblemKind::overloaded, "work queue is full", ""));
        }
    }

    static std::optional<nlohmann::json> optional_body(const Request& req) {
        if (req.body.empty()) return nlohmann::json::object();
        auto body = token::parse_strict_json(req.body, kMaxBodyDepth);
        if (body.problem != token::JsonProblem::none || !body.value.is_object()) {
            return std::nullopt;
        }
        return std::move(body.value);
    }

    // /v1/keys/{name}, /v1/keys/{name}/rotations, /v1/keys/{name}/versions/{n}/{retire,destroy}
    void key_routes(Request req, std::function<void(Response)> done) {
        std::string_view rest = std::string_view(req.path).substr(kKeysPrefix.size());
        auto slash = rest.find('/');
        std::string name(rest.substr(0, slash));
        if (!valid_key_segment(name)) return done(not_found(req));
        done = [inner = std::move(done), name](Response r) {
            r.key = name;  // for the access line
            inner(std::move(r));
        };
        if (slash == std::string_view::npos) {
            if (req.method != "GET") return done(method_not_allowed(req, "GET"));
            auto out = service_.get_key(caller_of(req), name);
            if (!out.ok()) return done(failure_response(out, req.request_id));
            return done(json_response(200, *out));
        }
        std::string_view tail = rest.substr(slash);
        std::optional<policy::Operation> op;
        std::optional<std::uint32_t> version;
        if (tail == "/rotations") {
            op = policy::Operation::rotate;
        } else if (tail.rfind("/versions/", 0) == 0) {
            std::string_view v = tail.substr(10);
            auto s2 = v.find('/');
            if (s2 == std::string_view::npos) return done(not_found(req));
            std::string_view number = v.substr(0, s2);
            std::string_view verb = v.substr(s2);
            if (number.empty() || number.size() > 9 ||
                number.find_first_not_of("0123456789") != std::string_view::npos) {
                return done(not_found(req));
            }
            version = static_cast<std::uint32_t>(std::stoul(std::string(number)));
            if (verb == "/retire") {
                op = policy::Operation::retire;
            } else if (verb == "/destroy") {
                op = policy::Operation::destroy;
            }
        }
        if (!op) return done(not_found(req));
        if (req.method != "POST") return done(method_not_allowed(req, "POST"));
        auto body = optional_body(req);
        if (!body) return done(bad_request("the body must be a JSON object", req.request_id));
        bool force = false;
        for (auto it = body->begin(); it != body->end(); ++it) {
            if (it.key() == "force" && it->is_boolean() && *op == policy::Operation::destroy) {
                force = it->get<bool>();
            } else {
                return done(
                    bad_request("unknown or invalid member \"" + it.key() + "\"", req.request_id));
            }
        }
        offload(std::move(done), [this, req = std::move(req), op, version, name, force] {
            auto out = service_.open_request(caller_of(req), *op, name, version, force);
            if (!out.ok()) return failure_response(out, req.request_id);
            return json_response((*out)["executed"].get<bool>() ? 201 : 202, *out);
        });
    }

    // /v1/requests, /v1/requests/{id}, /v1/requests/{id}/approve, /v1/requests/{id}/reject
    void request_routes(Request req, std::function<void(Response)> done) {
        if (req.path == "/v1/requests") {
            if (req.method != "GET") return done(method_not_allowed(req, "GET"));
            return offload(std::move(done), [this, req = std::move(req)] {
                auto out = service_.list_requests(caller_of(req));
                if (!out.ok()) return failure_response(out, req.request_id);
                return json_response(200, *out);
            });
        }
        std::string_view rest = std::string_view(req.path).substr(kRequestsPrefix.size());
        auto slash = rest.find('/');
        std::string id(rest.substr(0, slash));
        std::string verb = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
        if (verb.empty()) {
            if (req.method != "GET") return done(method_not_allowed(req, "GET"));
            return offload(std::move(done), [this, req = std::move(req), id] {
                auto out = service_.get_request(caller_of(req), id);
                if (!out.ok()) return failure_response(out, req.request_id);
                return json_response(200, *out);
            });
        }
        if (verb != "/approve" && verb != "/reject") return done(not_found(req));
        if (req.method != "POST") return done(method_not_allowed(req, "POST"));
        auto body = optional_body(req);
        if (!body) return done(bad_request("the body must be a JSON object", req.request_id));
        std::optional<std::string> digest;
        for (auto it = body->begin(); it != body->end(); ++it) {
            if (it.key() == "digest" && it->is_string() && verb == "/approve") {
                digest = it->get<std::string>();
            } else {
                return done(
                    bad_request("unknown or invalid member \"" + it.key() + "\"", req.request_id));
            }
        }
        offload(std::move(done), [this, req = std::move(req), id, verb, digest] {
            auto out = verb == "/approve" ? service_.approve_request(caller_of(req), id, digest)
                                          : service_.reject_request(caller_of(req), id);
            if (!out.ok()) return failure_response(out, req.request_id);
            return json_response(200, *out);
        });
    }

    // RFC 9110 §15.5.6: a 405 names the methods the resource supports in Allow.
    static Response method_not_allowed(const Request& req, std::string_view allow) {
        Response r = net::problem_response(
            ProblemKind::method_not_allowed,
            "method " + req.method + " is not allowed on " + req.path, req.request_id);
        r.headers.push_back({"Allow", std::string(allow)});
        return r;
    }
    static Response not_found(const Request& req) {
        return net::problem_response(ProblemKind::not_found, "no such resource", req.request_id);
    }

    void sign(Request req, std::function<void(Response)> done) {
        if (!net::is_json_media_type(req.content_type)) {
            return done(net::problem_response(
                ProblemKind::unsupported_media_type,
                "the body must be sent as Content-Type: application/json", req.request_id));
        }
        // One strict parser for every body: RFC 8259, no duplicate member names (I-JSON,
        // RFC 7493 §2.3), bounded nesting.
        auto parsed = token::parse_strict_json(req.body, kMaxBodyDepth);
        if (parsed.problem == token::JsonProblem::duplicate) {
            return done(bad_request("the body has a " + parsed.detail, req.request_id));
        }
        if (parsed.problem != token::JsonProblem::none) {
            return done(
                bad_request("the body is not valid JSON (" + parsed.detail + ")", req.request_id));
        }
        nlohmann::json body = std::move(parsed.value);
        if (!body.is_object()) {
            return done(bad_request("the body must be a JSON object", req.request_id));
        }
        auto key = body.find("key");
        auto claims = body.find("claims");
        if (key == body.end() || !key->is_string() || claims == body.end() ||
            !claims->is_object()) {
            return done(bad_request(R"(the body must be {"key": string, "claims": object})",
                                    req.request_id));
        }
        for (auto it = body.begin(); it != body.end(); ++it) {
            if (it.key() != "key" && it.key() != "claims") {
                return done(bad_request("unknown member \"" + it.key() + "\"", req.request_id));
            }
        }
        std::string request_id = req.request_id;
        std::string name = key->get<std::string>();
        // The access line names the key when it is a name the policy could have.
        std::string logged_key = valid_key_segment(name) ? name : std::string();
        service_.sign_token(
            caller_of(req), std::move(name), std::move(*claims),
            [done = std::move(done), request_id,
             logged_key = std::move(logged_key)](core::Result<service::IssuedToken> out) {
                Response r;
                if (!out.ok()) {
                    r = failure_response(out, request_id);
                } else {
                    r = json_response(201, {{"token", out->token},
                                            {"kid", out->kid},
                                            {"audit_index", out->audit_index}});
                    r.headers.push_back({"Cache-Control", "no-store"});
                    r.kid = out->kid;
                }
                r.key = logged_key;
                done(std::move(r));
            });
    }

    // GET /v1/tokens/receipt?audit_index=I. The use case reads the log's files and may wait for
    // the next checkpoint: it runs on the blocking pool, and a wait holds no thread at all
    // (audit::CheckpointWaiter answers it).
    void receipt(Request req, std::function<void(Response)> done) {
        auto q = net::QueryParams::parse(req.query);
        if (!q) return done(net::error_response(q.error(), req.request_id));
        for (const auto& [name, value] : q->pairs()) {
            if (name != "audit_index" && name != "token_sha256") {
                return done(
                    bad_request("unknown query parameter \"" + name + "\"", req.request_id));
            }
        }
        auto index = q->get_uint("audit_index");
        if (!index) return done(net::error_response(index.error(), req.request_id));
        if (!*index) return done(bad_request("audit_index is required", req.request_id));
        std::optional<std::string> token_sha256;
        if (q->count("token_sha256") > 0) {
            token_sha256 = q->get("token_sha256");
            if (q->count("token_sha256") != 1 || !token_sha256 || token_sha256->size() != 64 ||
                token_sha256->find_first_not_of("0123456789abcdef") != std::string::npos) {
                return done(
                    bad_request("token_sha256 must be 64 lowercase hex digits", req.request_id));
            }
        }
        auto shared_done = std::make_shared<std::function<void(Response)>>(std::move(done));
        const bool posted = blocking_.post([this, shared_done, caller = caller_of(req),
                                            request_id = req.request_id,
                                            i = static_cast<std::uint64_t>(**index),
                                            token_sha256 = std::move(token_sha256)] {
            service_.token_receipt(
                caller, i, token_sha256, [shared_done, request_id](core::Result<std::string> out) {
                    Response r;
                    if (!out.ok()) {
                        r = failure_response(out, request_id);
                    } else {
                        r = text_response("text/plain; charset=utf-8", std::move(*out));
                        r.headers.push_back({"Cache-Control", "no-store"});
                    }
                    (*shared_done)(std::move(r));
                });
        });
        if (!posted) {
            (*shared_done)(net::problem_response(ProblemKind::overloaded, "work queue is full",
                                                 req.request_id));
        }
    }

    Response entries(const Request& req) {
        auto q = net::QueryParams::parse(req.query);
        if (!q) return net::error_response(q.error(), req.request_id);
        auto start = q->get_uint("start");
        auto end = q->get_uint("end");
        if (!start) return net::error_response(start.error(), req.request_id);
        if (!end) return net::error_response(end.error(), req.request_id);
        if (!*start || !*end) {
            return bad_request("start and end are required", req.request_id);
        }
        if (**end < **start || **end - **start > kMaxEntriesPerRequest) {
            return bad_request("need start <= end and at most 10000 entries", req.request_id);
        }
        auto out = service_.audit_entries(caller_of(req), **start, **end);
        if (!out.ok()) return failure_response(out, req.request_id);
        return text_response("application/x-ndjson", std::move(*out));
    }

    template <class Fn>
    Response two_numbers(const Request& req, const char* a_name, const char* b_name, Fn fn) {
        auto q = net::QueryParams::parse(req.query);
        if (!q) return net::error_response(q.error(), req.request_id);
        auto a = q->get_uint(a_name);
        auto b = q->get_uint(b_name);
        if (!a) return net::error_response(a.error(), req.request_id);
        if (!b) return net::error_response(b.error(), req.request_id);
        if (!*a || !*b) {
            return bad_request(std::string(a_name) + " and " + b_name + " are required",
                               req.request_id);
        }
        return fn(static_cast<std::uint64_t>(**a), static_cast<std::uint64_t>(**b));
    }

    service::Service& service_;
    service::Executor& blocking_;
    std::shared_ptr<const AuditProbe> audit_;
};

class OpsHandler final : public net::Handler {
  public:
    explicit OpsHandler(OpsProbe probe) : probe_(std::move(probe)) {}

    void handle(Request req, std::function<void(Response)> answer) override {
        auto done = [&answer, &req](Response r) {
            r.route = req.path == "/healthz" || req.path == "/readyz" || req.path == "/metrics"
                          ? req.path
                          : "unmatched";
            answer(std::move(r));
        };
        if (req.method != "GET" && req.method != "HEAD") {
            return done(net::problem_response(ProblemKind::method_not_allowed,
                                              "only GET is served here", req.request_id));
        }
        if (req.path == "/healthz") {
            bool live = probe_.live ? probe_.live() : true;
            Response r = text_response("text/plain; charset=utf-8", live ? "ok\n" : "not live\n");
            r.status = live ? 200 : 503;
            return done(std::move(r));
        }
        if (req.path == "/readyz") {
            std::string reason = probe_.not_ready_reason ? probe_.not_ready_reason() : "";
            Response r = text_response("text/plain; charset=utf-8",
                                       reason.empty() ? "ready\n" : "not ready: " + reason + "\n");
            r.status = reason.empty() ? 200 : 503;
            return done(std::move(r));
        }
        if (req.path == "/metrics" && probe_.metrics) {
            return done(text_response("text/plain; version=0.0.4", probe_.metrics()));
        }
        done(net::problem_response(ProblemKind::not_found, "no such resource", req.request_id));
    }

  private:
    OpsProbe probe_;
};

// The public listener: the JWKS and nothing else.
class PublicHandler final : public net::Handler {
  public:
    explicit PublicHandler(service::Service& service) : service_(service) {}

    void handle(Request req, std::function<void(Response)> done) override {
        if (req.path != "/.well-known/jwks.json") {
            Response r =
                net::problem_response(ProblemKind::not_found, "no such resource", req.request_id);
            r.route = "unmatched";
            return done(std::move(r));
        }
        Response r;
        if (req.method != "GET") {
            r = net::problem_response(ProblemKind::method_not_allowed,
                                      "method " + req.method + " is not allowed on " + req.path,
                                      req.request_id);
            r.headers.push_back({"Allow", "GET"});
        } else if (auto out = service_.public_jwks(); !out.ok()) {
            r = failure_response(out, req.request_id);
        } else {
            r = jwks_response(*out, req);
        }
        r.route = "/.well-known/jwks.json";
        done(std::move(r));
    }

  private:
    service::Service& service_;
};

}  // namespace

std::shared_ptr<net::Handler> make_public_handler(service::Service& service) {
    return std::make_shared<PublicHandler>(service);
}

std::shared_ptr<net::Handler> make_api_handler(service::Service& service,
                                               service::Executor& blocking, AuditProbe audit) {
    return std::make_shared<ApiHandler>(service, blocking, std::move(audit));
}

std::shared_ptr<net::Handler> make_ops_handler(OpsProbe probe) {
    return std::make_shared<OpsHandler>(std::move(probe));
}

}  // namespace licentra::app
