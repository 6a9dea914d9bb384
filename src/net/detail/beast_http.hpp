// Internal: the Beast parser configuration and message conversions shared by the server
// sessions, parse_request() (and so the fuzz target) and the client. Not part of the API.
#pragma once

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "net/http.hpp"

namespace licentra::net::detail {

namespace http = boost::beast::http;

using RequestParser = http::request_parser<http::string_body>;
using BeastRequest = http::request<http::string_body>;
using BeastResponse = http::response<http::string_body>;

// header_limit / body_limit exactly as the server applies them.
void configure_parser(RequestParser& parser, const Limits& limits);

// Converts a parsed message into a Request (identity, request id and peer left for the caller).
[[nodiscard]] Request to_request(BeastRequest&& message);

// The problem kind for a Beast read error, or nullopt if the error is an I/O condition that
// gets no response (end of stream, reset, timeout).
[[nodiscard]] std::optional<ProblemKind> problem_for_read_error(const boost::beast::error_code& ec);

// Builds the wire response: status, Content-Type, extra headers, X-Request-Id, keep-alive,
// Content-Length.
[[nodiscard]] BeastResponse to_beast_response(Response&& response, const std::string& request_id,
                                              bool keep_alive, unsigned version);

}  // namespace licentra::net::detail
