#include "p11fault/control.hpp"

#include <charconv>
#include <cstdio>
#include <utility>
#include <variant>

namespace licentra::p11fault {

namespace {

// Every CKR_ value of PKCS#11 v2.40 (§3.6 of the base specification's header).
// clang-format off
#define P11FAULT_RVS(R)                                                                            \
    R(CKR_OK) R(CKR_CANCEL) R(CKR_HOST_MEMORY) R(CKR_SLOT_ID_INVALID) R(CKR_GENERAL_ERROR)         \
    R(CKR_FUNCTION_FAILED) R(CKR_ARGUMENTS_BAD) R(CKR_NO_EVENT) R(CKR_NEED_TO_CREATE_THREADS)      \
    R(CKR_CANT_LOCK) R(CKR_ATTRIBUTE_READ_ONLY) R(CKR_ATTRIBUTE_SENSITIVE)                         \
    R(CKR_ATTRIBUTE_TYPE_INVALID) R(CKR_ATTRIBUTE_VALUE_INVALID) R(CKR_ACTION_PROHIBITED)          \
    R(CKR_DATA_INVALID) R(CKR_DATA_LEN_RANGE) R(CKR_DEVICE_ERROR) R(CKR_DEVICE_MEMORY)             \
    R(CKR_DEVICE_REMOVED) R(CKR_ENCRYPTED_DATA_INVALID) R(CKR_ENCRYPTED_DATA_LEN_RANGE)            \
    R(CKR_FUNCTION_CANCELED) R(CKR_FUNCTION_NOT_PARALLEL) R(CKR_FUNCTION_NOT_SUPPORTED)            \
    R(CKR_KEY_HANDLE_INVALID) R(CKR_KEY_SIZE_RANGE) R(CKR_KEY_TYPE_INCONSISTENT)                   \
    R(CKR_KEY_NOT_NEEDED) R(CKR_KEY_CHANGED) R(CKR_KEY_NEEDED) R(CKR_KEY_INDIGESTIBLE)             \
    R(CKR_KEY_FUNCTION_NOT_PERMITTED) R(CKR_KEY_NOT_WRAPPABLE) R(CKR_KEY_UNEXTRACTABLE)            \
    R(CKR_MECHANISM_INVALID) R(CKR_MECHANISM_PARAM_INVALID) R(CKR_OBJECT_HANDLE_INVALID)           \
    R(CKR_OPERATION_ACTIVE) R(CKR_OPERATION_NOT_INITIALIZED) R(CKR_PIN_INCORRECT)                  \
    R(CKR_PIN_INVALID) R(CKR_PIN_LEN_RANGE) R(CKR_PIN_EXPIRED) R(CKR_PIN_LOCKED)                   \
    R(CKR_SESSION_CLOSED) R(CKR_SESSION_COUNT) R(CKR_SESSION_HANDLE_INVALID)                       \
    R(CKR_SESSION_PARALLEL_NOT_SUPPORTED) R(CKR_SESSION_READ_ONLY) R(CKR_SESSION_EXISTS)           \
    R(CKR_SESSION_READ_ONLY_EXISTS) R(CKR_SESSION_READ_WRITE_SO_EXISTS) R(CKR_SIGNATURE_INVALID)   \
    R(CKR_SIGNATURE_LEN_RANGE) R(CKR_TEMPLATE_INCOMPLETE) R(CKR_TEMPLATE_INCONSISTENT)             \
    R(CKR_TOKEN_NOT_PRESENT) R(CKR_TOKEN_NOT_RECOGNIZED) R(CKR_TOKEN_WRITE_PROTECTED)              \
    R(CKR_UNWRAPPING_KEY_HANDLE_INVALID) R(CKR_UNWRAPPING_KEY_SIZE_RANGE)                          \
    R(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT) R(CKR_USER_ALREADY_LOGGED_IN)                          \
    R(CKR_USER_NOT_LOGGED_IN) R(CKR_USER_PIN_NOT_INITIALIZED) R(CKR_USER_TYPE_INVALID)             \
    R(CKR_USER_ANOTHER_ALREADY_LOGGED_IN) R(CKR_USER_TOO_MANY_TYPES) R(CKR_WRAPPED_KEY_INVALID)    \
    R(CKR_WRAPPED_KEY_LEN_RANGE) R(CKR_WRAPPING_KEY_HANDLE_INVALID)                                \
    R(CKR_WRAPPING_KEY_SIZE_RANGE) R(CKR_WRAPPING_KEY_TYPE_INCONSISTENT)                           \
    R(CKR_RANDOM_SEED_NOT_SUPPORTED) R(CKR_RANDOM_NO_RNG) R(CKR_DOMAIN_PARAMS_INVALID)             \
    R(CKR_CURVE_NOT_SUPPORTED) R(CKR_BUFFER_TOO_SMALL) R(CKR_SAVED_STATE_INVALID)                  \
    R(CKR_INFORMATION_SENSITIVE) R(CKR_STATE_UNSAVEABLE) R(CKR_CRYPTOKI_NOT_INITIALIZED)           \
    R(CKR_CRYPTOKI_ALREADY_INITIALIZED) R(CKR_MUTEX_BAD) R(CKR_MUTEX_NOT_LOCKED)                   \
    R(CKR_NEW_PIN_MODE) R(CKR_NEXT_OTP) R(CKR_EXCEEDED_MAX_ITERATIONS)                             \
    R(CKR_FIPS_SELF_TEST_FAILED) R(CKR_LIBRARY_LOAD_FAILED) R(CKR_PIN_TOO_WEAK)                    \
    R(CKR_PUBLIC_KEY_INVALID) R(CKR_FUNCTION_REJECTED)
// clang-format on

struct RvName {
    std::string_view name;
    CK_RV value;
};

constexpr RvName kRvNames[] = {
#define P11FAULT_RV(x) {#x, x},
    P11FAULT_RVS(P11FAULT_RV)
#undef P11FAULT_RV
};

std::string_view trim(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

std::vector<std::string_view> words(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
        const std::size_t b = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
        if (i > b) out.push_back(s.substr(b, i - b));
    }
    return out;
}

template <typename T>
std::optional<T> number(std::string_view s, int base = 10) {
    T v{};
    const char* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, v, base);
    if (ec != std::errc() || p != end || s.empty()) return std::nullopt;
    return v;
}

std::optional<double> decimal(std::string_view s) {
    double v = 0;
    const char* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, v, std::chars_format::fixed);
    if (ec != std::errc() || p != end || s.empty()) return std::nullopt;
    return v;
}

// One rule from the words of a line; an error message when the line is malformed.
std::variant<Rule, std::string> parse_rule(const std::vector<std::string_view>& w) {
    Rule r;
    if (w[0] != "*") {
        r.function = function_by_name(w[0]);
        if (!r.function) return "unknown PKCS#11 function '" + std::string(w[0]) + "'";
        if (*r.function == Fn::C_GetFunctionList) return "C_GetFunctionList is never faulted";
    }
    bool have_trigger = false, have_rv = false, have_delay = false, have_jitter = false;
    for (std::size_t i = 1; i < w.size(); ++i) {
        const std::string_view word = w[i];
        const auto eq = word.find('=');
        const std::string_view key = word.substr(0, eq);
        const std::string_view value =
            eq == std::string_view::npos ? std::string_view{} : word.substr(eq + 1);
        const bool has_value = eq != std::string_view::npos;
        auto trigger = [&](Trigger t) -> bool {
            if (have_trigger) return false;
            have_trigger = true;
            r.trigger = t;
            return true;
        };
        if (key == "every" && !has_value) {
            if (!trigger(Trigger::every)) return "more than one of every, nth=, probability=";
        } else if (key == "hang" && !has_value) {
            if (r.hang) return "hang given twice";
            r.hang = true;
        } else if (key == "nth" && has_value) {
            if (!trigger(Trigger::nth)) return "more than one of every, nth=, probability=";
            auto n = number<std::uint64_t>(value);
            if (!n || *n == 0) return "nth= needs a whole number >= 1";
            r.nth = *n;
        } else if (key == "probability" && has_value) {
            if (!trigger(Trigger::probability)) {
                return "more than one of every, nth=, probability=";
            }
            auto p = decimal(value);
            if (!p || !(*p >= 0.0 && *p <= 1.0)) return "probability= needs a number in 0..1";
            r.probability = *p;
        } else if (key == "rv" && has_value) {
            if (have_rv) return "rv= given twice";
            have_rv = true;
            r.rv = parse_rv(value);
            if (!r.rv)
                return "rv= needs a CKR_ name or a non-zero number, not '" + std::string(value) +
                       "'";
        } else if ((key == "delay" || key == "jitter") && has_value) {
            bool& seen = key == "delay" ? have_delay : have_jitter;
            if (seen) return std::string(key) + "= given twice";
            seen = true;
            auto d = parse_duration(value);
            if (!d) return std::string(key) + "= needs a duration such as 5ms, 250us or 1s";
            (key == "delay" ? r.delay : r.jitter) = *d;
        } else {
            return "unknown word '" + std::string(word) + "'";
        }
    }
    if (!have_rv && !have_delay && !r.hang) return "no action: give rv=, delay= or hang";
    if (have_jitter && !have_delay) return "jitter= needs delay=";
    if (r.hang && (have_rv || have_delay)) return "hang cannot be combined with rv= or delay=";
    return r;
}

}  // namespace

bool Rule::applies_to(Fn f) const noexcept {
    if (function) return *function == f;
    return f != Fn::C_Initialize && f != Fn::C_Finalize && f != Fn::C_GetFunctionList;
}

std::optional<Fn> function_by_name(std::string_view name) {
    for (std::size_t i = 0; i < kFunctionCount; ++i) {
        if (name == kFunctionNames[i]) return static_cast<Fn>(i);
    }
    return std::nullopt;
}

std::optional<CK_RV> parse_rv(std::string_view text) {
    std::optional<CK_RV> v;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        v = number<CK_RV>(text.substr(2), 16);
    } else if (!text.empty() && text[0] >= '0' && text[0] <= '9') {
        v = number<CK_RV>(text);
    } else {
        for (const auto& e : kRvNames) {
            if (text == e.name || (e.name.substr(0, 4) == "CKR_" && text == e.name.substr(4))) {
                v = e.value;
                break;
            }
        }
    }
    if (!v || *v == CKR_OK) return std::nullopt;
    return v;
}

std::string rv_name(CK_RV rv) {
    for (const auto& e : kRvNames) {
        if (e.value == rv) return std::string(e.name);
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%lx", rv);
    return buf;
}

std::optional<std::chrono::microseconds> parse_duration(std::string_view text) {
    double scale = 0;
    std::string_view num;
    if (text.ends_with("us")) {
        scale = 1;
        num = text.substr(0, text.size() - 2);
    } else if (text.ends_with("ms")) {
        scale = 1e3;
        num = text.substr(0, text.size() - 2);
    } else if (text.ends_with("s")) {
        scale = 1e6;
        num = text.substr(0, text.size() - 1);
    } else {
        return std::nullopt;
    }
    auto v = decimal(num);
    if (!v || !(*v >= 0.0)) return std::nullopt;
    const double us = *v * scale;
    if (!(us <= 3600e6)) return std::nullopt;
    return std::chrono::microseconds(static_cast<std::int64_t>(us + 0.5));
}

Control parse_control(std::string_view text) {
    Control out;
    std::size_t line_no = 0;
    while (!text.empty() || line_no == 0) {
        ++line_no;
        const auto nl = text.find('\n');
        const std::string_view raw = text.substr(0, nl);
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
        const std::string_view body = trim(raw.substr(0, raw.find('#')));
        if (body.empty()) continue;
        auto rule = parse_rule(words(body));
        if (auto* r = std::get_if<Rule>(&rule)) {
            r->line = line_no;
            out.rules.push_back(*r);
        } else {
            out.errors.push_back(
                {line_no, std::get<std::string>(std::move(rule)), std::string(trim(raw))});
        }
    }
    return out;
}

}  // namespace licentra::p11fault
