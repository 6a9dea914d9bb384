#include "audit/pseudonym_epoch.hpp"

#include <charconv>

namespace licentra::audit {
namespace {

// Unix seconds the clock holds with room for an epoch's end and retention (core/time's range
// for stored times ends in 2099; 4102444800 is 2100-01-01).
constexpr std::int64_t kMaxSeconds = 4102444800;

std::optional<std::int64_t> number(std::string_view s) {
    if (s.empty() || s.size() > 12 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

}  // namespace

std::string PseudonymEpoch::name() const {
    return "e" + std::to_string(start_s) + "-" + std::to_string(length_s);
}

std::string PseudonymEpoch::label() const { return std::string(kPseudonymLabelPrefix) + name(); }

core::TimePoint PseudonymEpoch::start() const {
    return core::TimePoint(std::chrono::seconds(start_s));
}

core::TimePoint PseudonymEpoch::end() const {
    return core::TimePoint(std::chrono::seconds(start_s + length_s));
}

core::TimePoint PseudonymEpoch::destroy_at(std::chrono::seconds retention) const {
    return end() + retention;
}

std::optional<PseudonymEpoch> PseudonymEpoch::parse(std::string_view name) {
    if (name.size() < 4 || name[0] != 'e') return std::nullopt;
    const auto dash = name.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    auto start = number(name.substr(1, dash - 1));
    auto length = number(name.substr(dash + 1));
    if (!start || !length || *length <= 0 || *start % *length != 0 ||
        *start > kMaxSeconds - *length) {
        return std::nullopt;
    }
    return PseudonymEpoch{*start, *length};
}

std::optional<PseudonymEpoch> PseudonymEpoch::from_label(std::string_view label) {
    if (label.substr(0, kPseudonymLabelPrefix.size()) != kPseudonymLabelPrefix) {
        return std::nullopt;
    }
    return parse(label.substr(kPseudonymLabelPrefix.size()));
}

PseudonymEpoch epoch_at(core::TimePoint t, std::chrono::seconds length) {
    const std::int64_t len = length.count();
    const std::int64_t s =
        std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
    // Floor division: instants before 1970 belong to the epoch that starts before them.
    std::int64_t start = (s / len) * len;
    if (s < 0 && s % len != 0) start -= len;
    return PseudonymEpoch{start, len};
}

}  // namespace licentra::audit
