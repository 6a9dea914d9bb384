#include "net/query.hpp"

#include <charconv>

namespace licentra::net {
namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

core::Result<std::string> percent_decode(std::string_view text, bool plus_as_space) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%') {
            // RFC 3986 §2.1: pct-encoded = "%" HEXDIG HEXDIG
            if (i + 2 >= text.size()) {
                return core::make_error(core::ErrorKind::usage, "net.bad_percent_encoding",
                                        "truncated percent-encoding");
            }
            const int hi = hex_value(text[i + 1]);
            const int lo = hex_value(text[i + 2]);
            if (hi < 0 || lo < 0) {
                return core::make_error(core::ErrorKind::usage, "net.bad_percent_encoding",
                                        "invalid percent-encoding");
            }
            const int value = hi * 16 + lo;
            if (value == 0) {
                return core::make_error(core::ErrorKind::usage, "net.bad_percent_encoding",
                                        "percent-encoded NUL");
            }
            out.push_back(static_cast<char>(value));
            i += 2;
        } else if (c == '+' && plus_as_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string percent_encode(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        const bool unreserved = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                                (u >= '0' && u <= '9') || u == '-' || u == '.' || u == '_' ||
                                u == '~';
        if (unreserved) {
            out.push_back(c);
        } else {
            out.push_back('%');
            out.push_back(kHex[u >> 4]);
            out.push_back(kHex[u & 0x0F]);
        }
    }
    return out;
}

core::Result<QueryParams> QueryParams::parse(std::string_view query, std::size_t max_params) {
    QueryParams params;
    std::size_t pos = 0;
    while (pos <= query.size()) {
        std::size_t end = query.find('&', pos);
        if (end == std::string_view::npos) end = query.size();
        const std::string_view segment = query.substr(pos, end - pos);
        pos = end + 1;
        if (segment.empty()) {
            if (end == query.size()) break;
            continue;
        }
        if (params.pairs_.size() >= max_params) {
            return core::make_error(core::ErrorKind::usage, "net.too_many_params",
                                    "too many query parameters");
        }
        const std::size_t eq = segment.find('=');
        auto key = percent_decode(segment.substr(0, eq), true);
        if (!key) return std::move(key).error();
        std::string value;
        if (eq != std::string_view::npos) {
            auto decoded = percent_decode(segment.substr(eq + 1), true);
            if (!decoded) return std::move(decoded).error();
            value = std::move(decoded).value();
        }
        params.pairs_.emplace_back(std::move(key).value(), std::move(value));
        if (end == query.size()) break;
    }
    return params;
}

std::optional<std::string> QueryParams::get(std::string_view key) const {
    for (const auto& [k, v] : pairs_) {
        if (k == key) return v;
    }
    return std::nullopt;
}

std::vector<std::string> QueryParams::get_all(std::string_view key) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : pairs_) {
        if (k == key) out.push_back(v);
    }
    return out;
}

std::size_t QueryParams::count(std::string_view key) const {
    std::size_t n = 0;
    for (const auto& [k, v] : pairs_) {
        if (k == key) ++n;
    }
    return n;
}

core::Result<std::optional<unsigned long long>> QueryParams::get_uint(std::string_view key) const {
    const std::size_t n = count(key);
    if (n == 0) return std::optional<unsigned long long>{};
    if (n > 1) {
        return core::make_error(core::ErrorKind::usage, "net.bad_query_param",
                                "query parameter '" + std::string(key) + "' given more than once");
    }
    const std::string value = *get(key);
    unsigned long long out = 0;
    const char* first = value.data();
    const char* last = value.data() + value.size();
    const bool digits_only =
        !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
    const auto [ptr, ec] = std::from_chars(first, last, out);
    if (!digits_only || ec != std::errc{} || ptr != last) {
        return core::make_error(
            core::ErrorKind::usage, "net.bad_query_param",
            "query parameter '" + std::string(key) + "' must be an unsigned decimal integer");
    }
    return std::optional<unsigned long long>{out};
}

}  // namespace licentra::net
