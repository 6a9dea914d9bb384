#include "net/http.hpp"

#include <nlohmann/json.hpp>

#include "core/bytes.hpp"
#include "crypto/random.hpp"
#include "net/detail/beast_http.hpp"

namespace licentra::net {

namespace {

struct ProblemInfo {
    std::string_view slug;
    unsigned status;
    std::string_view title;
};

ProblemInfo info(ProblemKind kind) noexcept {
    switch (kind) {
        case ProblemKind::bad_request:
            return {"bad-request", 400, "Bad request"};
        case ProblemKind::unauthorized:
            return {"unauthorized", 401, "Unauthorized"};
        case ProblemKind::forbidden:
            return {"forbidden", 403, "Forbidden"};
        case ProblemKind::not_found:
            return {"not-found", 404, "Not found"};
        case ProblemKind::method_not_allowed:
            return {"method-not-allowed", 405, "Method not allowed"};
        case ProblemKind::request_timeout:
            return {"request-timeout", 408, "Request timeout"};
        case ProblemKind::conflict:
            return {"conflict", 409, "Conflict"};
        case ProblemKind::payload_too_large:
            return {"payload-too-large", 413, "Payload too large"};
        case ProblemKind::unsupported_media_type:
            return {"unsupported-media-type", 415, "Unsupported media type"};
        case ProblemKind::validation_failed:
            return {"validation-failed", 422, "Validation failed"};
        case ProblemKind::rate_limited:
            return {"rate-limited", 429, "Too many requests"};
        case ProblemKind::header_too_large:
            return {"header-too-large", 431, "Request header fields too large"};
        case ProblemKind::internal:
            return {"internal", 500, "Internal error"};
        case ProblemKind::integrity:
            return {"integrity", 500, "Integrity check failed"};
        case ProblemKind::unavailable:
            return {"unavailable", 503, "Service unavailable"};
        case ProblemKind::hsm_unavailable:
            return {"hsm-unavailable", 503, "HSM unavailable"};
        case ProblemKind::overloaded:
            return {"overloaded", 503, "Server overloaded"};
        default:
            return {"internal", 500, "Internal error"};
    }
}

}  // namespace

std::string_view problem_slug(ProblemKind kind) noexcept { return info(kind).slug; }
std::string_view problem_title(ProblemKind kind) noexcept { return info(kind).title; }
unsigned problem_status(ProblemKind kind) noexcept { return info(kind).status; }
std::string problem_type(ProblemKind kind) {
    return std::string(kProblemTypeBase) + std::string(info(kind).slug);
}

ProblemKind problem_kind_for(core::ErrorKind kind) noexcept {
    switch (kind) {
        case core::ErrorKind::usage:
            return ProblemKind::bad_request;
        case core::ErrorKind::denied:
            return ProblemKind::forbidden;
        case core::ErrorKind::not_found:
            return ProblemKind::not_found;
        case core::ErrorKind::conflict:
            return ProblemKind::conflict;
        case core::ErrorKind::hsm_unavailable:
            return ProblemKind::hsm_unavailable;
        case core::ErrorKind::unavailable:
            return ProblemKind::unavailable;
        case core::ErrorKind::integrity:
            return ProblemKind::integrity;
        case core::ErrorKind::limit:
            return ProblemKind::rate_limited;
        case core::ErrorKind::overloaded:
            return ProblemKind::overloaded;
        case core::ErrorKind::internal:
            return ProblemKind::internal;
        default:
            return ProblemKind::internal;
    }
}

Response problem_response(ProblemKind kind, std::string_view detail, std::string_view request_id,
                          std::string_view extensions) {
    const ProblemInfo pi = info(kind);
    nlohmann::json body = nlohmann::json::object();
    if (!extensions.empty()) {
        auto ext = nlohmann::json::parse(extensions, nullptr, /*allow_exceptions=*/false);
        if (ext.is_object()) body = std::move(ext);
    }
    // RFC 9457 §3.1 members; they win over extension members of the same name.
    body["type"] = problem_type(kind);
    body["title"] = std::string(pi.title);
    body["status"] = pi.status;
    body["detail"] = std::string(detail);
    body["request_id"] = std::string(request_id);
    Response r;
    r.status = pi.status;
    r.content_type = std::string(kProblemContentType);
    // Invalid UTF-8 in detail is replaced rather than thrown on.
    r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return r;
}

Response error_response(const core::Error& error, std::string_view request_id) {
    nlohmann::json ext = {{"code", error.code}};
    Response r =
        problem_response(problem_kind_for(error.kind), error.message, request_id,
                         ext.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    if (error.retry_after) {
        r.headers.push_back(
            {"Retry-After", std::to_string(std::max<std::int64_t>(1, error.retry_after->count()))});
    }
    return r;
}

std::string new_request_id() {
    auto bytes = crypto::random_bytes(16);
    if (!bytes) {
        // The CSPRNG failing is fatal for signing anyway; an id must still be unique enough
        // for correlation, so fall back to a process counter.
        static std::atomic<std::uint64_t> counter{0};
        return "fallback-" + std::to_string(counter.fetch_add(1));
    }
    return core::hex_encode(bytes.value());
}

bool has_obsolete_line_folding(std::string_view bytes) noexcept {
    const auto end = bytes.find("\r\n\r\n");
    const std::string_view header =
        bytes.substr(0, end == std::string_view::npos ? bytes.size() : end + 2);
    return header.find("\r\n ") != std::string_view::npos ||
           header.find("\r\n\t") != std::string_view::npos;
}

core::Result<Request> parse_request(std::string_view bytes, const Limits& limits) {
    if (has_obsolete_line_folding(bytes)) {
        return core::make_error(core::ErrorKind::usage, "net.http_obs_fold",
                                "obsolete line folding (RFC 9112 section 5.2)");
    }
    detail::RequestParser parser;
    detail::configure_parser(parser, limits);
    boost::beast::error_code ec;
    std::size_t offset = 0;
    while (offset < bytes.size() && !parser.is_done()) {
        const std::size_t used =
            parser.put(boost::asio::buffer(bytes.data() + offset, bytes.size() - offset), ec);
        if (ec == detail::http::error::need_more) {
            ec = {};
            break;
        }
        if (ec) break;
        offset += used;
        if (used == 0) break;
    }
    if (!ec && !parser.is_done()) {
        // Tell the parser the stream ended (a body delimited by EOF completes here).
        parser.put_eof(ec);
    }
    if (ec) {
        const auto kind = detail::problem_for_read_error(ec);
        if (kind == ProblemKind::header_too_large) {
            return core::make_error(core::ErrorKind::limit, "net.header_too_large", ec.message());
        }
        if (kind == ProblemKind::payload_too_large) {
            return core::make_error(core::ErrorKind::limit, "net.body_too_large", ec.message());
        }
        if (ec == detail::http::error::partial_message) {
            return core::make_error(core::ErrorKind::usage, "net.http_incomplete", ec.message());
        }
        return core::make_error(core::ErrorKind::usage, "net.http_malformed", ec.message());
    }
    if (!parser.is_done()) {
        return core::make_error(core::ErrorKind::usage, "net.http_incomplete",
                                "message incomplete");
    }
    return detail::to_request(parser.release());
}

namespace detail {

void configure_parser(RequestParser& parser, const Limits& limits) {
    parser.header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits.header_limit, std::numeric_limits<std::uint32_t>::max())));
    parser.body_limit(static_cast<std::uint64_t>(limits.body_limit));
}

Request to_request(BeastRequest&& message) {
    Request r;
    r.method = std::string(message.method_string());
    r.target = std::string(message.target());
    const std::size_t q = r.target.find('?');
    r.path = r.target.substr(0, q);
    if (q != std::string::npos) r.query = r.target.substr(q + 1);
    if (auto it = message.find(http::field::content_type); it != message.end()) {
        r.content_type = std::string(it->value());
    }
    if (auto it = message.find(http::field::accept); it != message.end()) {
        r.accept = std::string(it->value());
    }
    if (auto it = message.find(http::field::if_none_match); it != message.end()) {
        r.if_none_match = std::string(it->value());
    }
    r.body = std::move(message.body());
    return r;
}

std::optional<ProblemKind> problem_for_read_error(const boost::beast::error_code& ec) {
    if (ec == http::error::header_limit) return ProblemKind::header_too_large;
    if (ec == http::error::body_limit) return ProblemKind::payload_too_large;
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
        // end_of_stream: the peer closed between requests; partial_message: it closed
        // mid-request. Neither can receive an answer.
        if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
            ec == http::error::need_more || ec == http::error::need_buffer) {
            return std::nullopt;
        }
        return ProblemKind::bad_request;
    }
    return std::nullopt;
}

namespace {

// RFC 9110 §5.1 token characters for names; values without CR, LF or NUL (no header
// injection). Headers the session owns are not overridable.
bool safe_header(const Header& h) {
    if (h.name.empty()) return false;
    for (const char c : h.name) {
        const auto u = static_cast<unsigned char>(c);
        const bool tchar = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                           (u >= '0' && u <= '9') ||
                           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
        if (!tchar) return false;
    }
    if (h.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) return false;
    for (std::string_view owned :
         {"content-length", "connection", "x-request-id", "transfer-encoding", "content-type"}) {
        if (boost::beast::iequals(h.name, owned)) return false;
    }
    return true;
}

}  // namespace

BeastResponse to_beast_response(Response&& response, const std::string& request_id, bool keep_alive,
                                unsigned version) {
    BeastResponse res;
    res.version(version);
    res.result(response.status);
    if (!response.content_type.empty()) {
        res.set(http::field::content_type, response.content_type);
    }
    for (auto& h : response.headers) {
        if (!safe_header(h)) continue;
        res.insert(h.name, h.value);
    }
    res.set("X-Request-Id", request_id);
    res.body() = std::move(response.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

}  // namespace detail
namespace {

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

bool is_json_media_type(std::string_view content_type) noexcept {
    const auto semi = content_type.find(';');
    if (!boost::beast::iequals(trim_ows(content_type.substr(0, semi)), "application/json"))
        return false;
    if (semi == std::string_view::npos) return true;
    const std::string_view param = trim_ows(content_type.substr(semi + 1));
    const auto eq = param.find('=');
    if (eq == std::string_view::npos || !boost::beast::iequals(param.substr(0, eq), "charset"))
        return false;
    std::string_view value = param.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
    }
    return boost::beast::iequals(value, "utf-8");
}

}  // namespace licentra::net
