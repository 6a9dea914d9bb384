// Service-agnostic HTTP types shared by the TLS API listener, the plain operations listener
// and the client: Request, Response, the Handler interface, Limits, and RFC 9457 problem
// documents.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/identity.hpp"
#include "core/result.hpp"

namespace licentra::net {

// Bounds applied to every connection. Defaults are the product defaults (docs/api.md).
struct Limits {
    std::size_t header_limit = 8 * 1024;  // request line + header fields, bytes (431 beyond)
    std::size_t body_limit = 64 * 1024;   // request body, bytes (413 beyond)
    // From accept to a completed TLS handshake (includes waiting for the ClientHello).
    std::chrono::milliseconds handshake_timeout{10'000};
    // Waiting for the first byte of the next request on a kept-alive connection.
    std::chrono::milliseconds idle_timeout{60'000};
    // From the first byte of a request to its last byte: one deadline for the whole request,
    // not per read, so a client trickling one byte per second is cut off.
    std::chrono::milliseconds read_timeout{10'000};
    // Writing one response, and the TLS close_notify exchange at close.
    std::chrono::milliseconds write_timeout{10'000};
    // Concurrent connections per listener; beyond it new connections are closed at accept.
    std::size_t max_connections = 4096;
    // Of those, connections still in their TLS handshake (not yet authenticated); beyond it new
    // connections are closed at accept, so unauthenticated peers cannot take every slot.
    std::size_t max_handshakes = 256;
    // Requests served on one connection before it is closed (0 = unlimited).
    std::size_t max_requests_per_connection = 0;
};

struct Header {
    std::string name;
    std::string value;
};

// One parsed request. Requests are served one at a time per connection: the next request is
// not read until this one's response is written.
struct Request {
    std::string method;         // as sent, e.g. "GET"
    std::string target;         // origin-form: path + optional "?query", not decoded
    std::string path;           // target up to '?', not decoded
    std::string query;          // after '?', not decoded (see query.hpp)
    std::string content_type;   // Content-Type header value, empty if absent
    std::string accept;         // Accept header value, empty if absent
    std::string if_none_match;  // If-None-Match header value, empty if absent
    std::string body;
    core::ClientIdentity identity;    // verified client certificate; empty on the ops listener
    bool authenticated = false;       // true on the mTLS listener (identity is meaningful)
    std::string request_id;           // random, generated per request; echoed as X-Request-Id
    std::string remote_address;       // "ip:port" of the peer, for logs
    std::uint64_t connection_id = 0;  // unique per listener process, for logs and tests
};

struct Response {
    unsigned status = 200;
    std::string content_type;  // omitted when empty (and body empty)
    std::string body;
    std::vector<Header>
        headers;  // extra headers; Content-Length, Connection, X-Request-Id are set by net
    // For the access log and the request metrics only, never sent: the route template the
    // handler matched ("/v1/keys/{key}", never an id or a query) and the principal it acted
    // for. Empty when the handler named none.
    std::string route;
    std::string principal;
    // Likewise: the key the request named (a policy key name) and the kid that signed, if any.
    std::string key;
    std::string kid;
};

// The application side of a listener.
//
// handle() runs on the connection's strand (an io_context thread) and must not block: blocking
// work goes to a WorkPool. `done` must be called exactly once, from any thread, at any later
// time; the session posts the completion back onto its own strand. Extra calls are ignored. If
// every copy of `done` is destroyed without a call, the client gets a 500 problem. Exceptions
// escaping handle() are caught and answered with a 500 problem.
class Handler {
  public:
    virtual ~Handler() = default;
    virtual void handle(Request request, std::function<void(Response)> done) = 0;
};

// Adapts a callable to Handler.
class FunctionHandler final : public Handler {
  public:
    using Fn = std::function<void(Request, std::function<void(Response)>)>;
    explicit FunctionHandler(Fn fn) : fn_(std::move(fn)) {}
    void handle(Request request, std::function<void(Response)> done) override {
        fn_(std::move(request), std::move(done));
    }

  private:
    Fn fn_;
};

// RFC 9457 problem kinds. Each has a stable type URI "https://licentra.dev/problems/<slug>",
// a status and a title; docs/api.md lists them. Never renumber or rename a slug.
enum class ProblemKind {
    bad_request,             // 400 malformed HTTP, query or body
    unauthorized,            // 401 reserved (the API listener refuses unauthenticated handshakes)
    forbidden,               // 403 policy denied
    not_found,               // 404
    method_not_allowed,      // 405
    request_timeout,         // 408
    conflict,                // 409
    payload_too_large,       // 413
    unsupported_media_type,  // 415
    validation_failed,       // 422 the request is well-formed but its content violates rules
    rate_limited,            // 429
    header_too_large,        // 431
    internal,                // 500
    integrity,               // 500 stored data failed verification
    unavailable,             // 503 a dependency (audit log, readiness) is down
    hsm_unavailable,         // 503
    overloaded,              // 503 connection or work queue full
};

inline constexpr std::string_view kProblemTypeBase = "https://licentra.dev/problems/";
inline constexpr std::string_view kProblemContentType = "application/problem+json";

[[nodiscard]] std::string_view problem_slug(ProblemKind kind) noexcept;
[[nodiscard]] std::string_view problem_title(ProblemKind kind) noexcept;
[[nodiscard]] unsigned problem_status(ProblemKind kind) noexcept;
[[nodiscard]] std::string problem_type(ProblemKind kind);  // full URI

// The problem kind an error kind is reported as: usage->bad_request, denied->forbidden,
// not_found, conflict, hsm_unavailable, unavailable, integrity, limit->rate_limited,
// internal. A denial is never reported as an internal error.
[[nodiscard]] ProblemKind problem_kind_for(core::ErrorKind kind) noexcept;

// A problem+json response: {"type","title","status","detail","request_id"} plus the members of
// `extensions` (a JSON object text; ignored if empty, and if not an object the response is
// still produced without them). `detail` must not contain secrets.
[[nodiscard]] Response problem_response(ProblemKind kind, std::string_view detail,
                                        std::string_view request_id,
                                        std::string_view extensions = {});
// Maps error.kind with problem_kind_for; detail is error.message and the member "code" is
// error.code.
[[nodiscard]] Response error_response(const core::Error& error, std::string_view request_id);

// A random request id: 16 bytes from the CSPRNG, lowercase hex (32 characters).
[[nodiscard]] std::string new_request_id();

// A Content-Type that names JSON: "application/json", optionally with the one parameter
// "charset=utf-8" (RFC 8259 §11 defines no parameters; UTF-8 is the only encoding, RFC 8259
// §8.1). Type, subtype, parameter name and value match case-insensitively (RFC 9110 §8.3.1),
// the value may be quoted, whitespace around ";" is allowed. Anything else, and an absent
// header, is not JSON.
[[nodiscard]] bool is_json_media_type(std::string_view content_type) noexcept;

// Parses raw bytes as one complete HTTP/1.1 request under `limits` with the same parser
// configuration the server uses, and converts it to a Request (identity empty). Used by the
// fuzz target and tests. Errors: usage (net.http_malformed, net.http_obs_fold), limit
// (net.header_too_large, net.body_too_large), or usage (net.http_incomplete) if the bytes end
// before the message.
[[nodiscard]] core::Result<Request> parse_request(std::string_view bytes, const Limits& limits);

// RFC 9112 §5.2: whether the header section `bytes` begins with (all of it, or up to its empty
// line when it holds one) continues a field line on the next line (obsolete line folding). The
// server refuses such a request with 400; Beast's parser would join the fold instead.
[[nodiscard]] bool has_obsolete_line_folding(std::string_view bytes) noexcept;

}  // namespace licentra::net
