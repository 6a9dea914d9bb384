// Query strings (RFC 3986 §3.4, application/x-www-form-urlencoded pairs) and percent-decoding.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace licentra::net {

// Decodes %XX escapes (RFC 3986 §2.1). With plus_as_space, '+' decodes to ' ' (form encoding,
// used for query values). Errors (usage, net.bad_percent_encoding): a '%' not followed by two
// hex digits, or a decoded NUL byte.
[[nodiscard]] core::Result<std::string> percent_decode(std::string_view text,
                                                       bool plus_as_space = false);

// Percent-encodes everything except RFC 3986 unreserved characters.
[[nodiscard]] std::string percent_encode(std::string_view text);

class QueryParams {
  public:
    // Parses "a=1&b=x%20y". Empty segments ("a=1&&b=2") are skipped; a key without '=' has an
    // empty value. Errors: bad percent-encoding (usage, net.bad_percent_encoding), or more than
    // max_params pairs (usage, net.too_many_params).
    [[nodiscard]] static core::Result<QueryParams> parse(std::string_view query,
                                                         std::size_t max_params = 64);

    // The value of the only occurrence of key; nullopt if absent. A key given twice is
    // ambiguous: use get_all, or check with count().
    [[nodiscard]] std::optional<std::string> get(std::string_view key) const;
    [[nodiscard]] std::vector<std::string> get_all(std::string_view key) const;
    [[nodiscard]] std::size_t count(std::string_view key) const;
    // Strict unsigned decimal value of key: nullopt if absent; usage error
    // (net.bad_query_param) if repeated, empty, non-digit or overflowing.
    [[nodiscard]] core::Result<std::optional<unsigned long long>> get_uint(
        std::string_view key) const;
    const std::vector<std::pair<std::string, std::string>>& pairs() const { return pairs_; }

  private:
    std::vector<std::pair<std::string, std::string>> pairs_;
};

}  // namespace licentra::net
