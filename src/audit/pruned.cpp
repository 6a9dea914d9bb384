#include "audit/pruned.hpp"

#include <algorithm>
#include <charconv>

#include "audit/entry.hpp"
#include "core/bytes.hpp"

namespace licentra::audit {

namespace {

constexpr std::string_view kPrefix = "{\"pruned\":{\"count\":";
constexpr std::string_view kFirst = ",\"first\":";
constexpr std::string_view kLeaves = ",\"leaf_hashes\":\"";
constexpr std::string_view kEnd = "\"}}";

core::Error malformed(const std::string& what) {
    return core::make_error(core::ErrorKind::integrity, "audit.pruned_malformed",
                            "pruned record: " + what);
}

// A decimal integer without leading zeros (or "0") at the front of *text, consumed.
std::optional<std::uint64_t> take_number(std::string_view* text) {
    std::size_t n = 0;
    while (n < text->size() && (*text)[n] >= '0' && (*text)[n] <= '9') ++n;
    if (n == 0 || (n > 1 && (*text)[0] == '0')) return std::nullopt;
    std::uint64_t value = 0;
    auto [p, ec] = std::from_chars(text->data(), text->data() + n, value);
    if (ec != std::errc() || p != text->data() + n) return std::nullopt;
    text->remove_prefix(n);
    return value;
}

bool take(std::string_view* text, std::string_view literal) {
    if (text->substr(0, literal.size()) != literal) return false;
    text->remove_prefix(literal.size());
    return true;
}

}  // namespace

bool is_pruned_record(std::string_view line) noexcept {
    return line.substr(0, 10) == std::string_view("{\"pruned\":");
}

std::string serialize_pruned_record(const PrunedRecord& record) {
    core::Bytes bytes;
    bytes.reserve(record.leaves.size() * 32);
    for (const Hash& h : record.leaves) bytes.insert(bytes.end(), h.begin(), h.end());
    std::string out(kPrefix);
    out += std::to_string(record.leaves.size());
    out += kFirst;
    out += std::to_string(record.first);
    out += kLeaves;
    out += core::base64_encode(bytes);
    out += kEnd;
    return out;
}

core::Result<PrunedRecord> parse_pruned_record(std::string_view line) {
    PrunedRecord record;
    if (auto st = parse_pruned_record(line, &record); !st) return std::move(st).error();
    return record;
}

core::Status parse_pruned_record(std::string_view line, PrunedRecord* out) {
    if (line.size() > kMaxEntryBytes) return malformed("longer than 64 KiB");
    std::string_view rest = line;
    if (!take(&rest, kPrefix)) return malformed("does not begin with {\"pruned\":{\"count\":");
    const auto count = take_number(&rest);
    if (!count) return malformed("count is not a canonical decimal integer");
    if (!take(&rest, kFirst)) return malformed("\"first\" does not follow \"count\"");
    const auto first = take_number(&rest);
    if (!first) return malformed("first is not a canonical decimal integer");
    if (!take(&rest, kLeaves)) return malformed("\"leaf_hashes\" does not follow \"first\"");
    const auto quote = rest.find('"');
    if (quote == std::string_view::npos) return malformed("leaf_hashes is not terminated");
    const std::string_view b64 = rest.substr(0, quote);
    rest.remove_prefix(quote);
    if (rest != kEnd) return malformed("unexpected bytes after leaf_hashes");
    if (*count == 0 || *count > kMaxPrunedLeaves) {
        return malformed("count must be 1-" + std::to_string(kMaxPrunedLeaves));
    }
    auto bytes = core::base64_decode(b64);
    if (!bytes) return malformed("leaf_hashes is not base64");
    if (core::base64_encode(*bytes) != b64) return malformed("leaf_hashes is not canonical base64");
    if (bytes->empty() || bytes->size() % 32 != 0) {
        return malformed("leaf_hashes is not a whole number of 32-byte hashes");
    }
    const std::uint64_t held = bytes->size() / 32;
    if (held != *count) {
        return core::make_error(core::ErrorKind::integrity, "audit.pruned_count_mismatch",
                                "pruned record claims " + std::to_string(*count) +
                                    " entries but holds " + std::to_string(held) + " leaf hashes");
    }
    if (*first > UINT64_MAX - *count) return malformed("first + count overflows");
    out->first = *first;
    out->leaves.resize(static_cast<std::size_t>(held));
    for (std::size_t i = 0; i < out->leaves.size(); ++i) {
        std::copy_n(bytes->begin() + static_cast<std::ptrdiff_t>(i * 32), 32,
                    out->leaves[i].begin());
    }
    return core::ok_status();
}

void add_pruned_range(std::vector<PrunedRange>& ranges, std::uint64_t first, std::uint64_t count) {
    if (count == 0) return;
    if (!ranges.empty() && ranges.back().first + ranges.back().count == first) {
        ranges.back().count += count;
        return;
    }
    ranges.push_back(PrunedRange{first, count});
}

}  // namespace licentra::audit
