// Pruned-range records: what a segment holds in place of entries whose payloads were removed
// past their retention (`licentra audit prune`, docs/adr/0005-audit-payload-pruning.md). A
// record keeps the RFC 9162 leaf hash of every entry it replaces, so the tree, every checkpoint
// and every inclusion and consistency proof still verify; only the payloads are gone.
//
//   {"pruned":{"count":<n>,"first":<index>,"leaf_hashes":"<base64 of n * 32 bytes>"}}
//
// One line, canonical like an entry: keys sorted, no whitespace, integers in shortest decimal,
// standard base64 with padding (RFC 4648 §4). An entry line always begins with {"action":, a
// record with {"pruned":, so the first bytes tell them apart.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "audit/merkle.hpp"
#include "core/result.hpp"

namespace licentra::audit {

// At most this many leaf hashes per record, so a record stays below kMaxEntryBytes (64 KiB):
// 1024 hashes are 43,692 base64 characters.
inline constexpr std::size_t kMaxPrunedLeaves = 1024;

struct PrunedRecord {
    std::uint64_t first = 0;   // leaf index of the first entry it replaces
    std::vector<Hash> leaves;  // one per replaced entry, in index order; 1..kMaxPrunedLeaves
    bool operator==(const PrunedRecord&) const = default;
};

// A contiguous run of pruned entries [first, first + count), as reported.
struct PrunedRange {
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    bool operator==(const PrunedRange&) const = default;
};

// Whether line is meant as a pruned record (starts with {"pruned":); it may still be malformed.
[[nodiscard]] bool is_pruned_record(std::string_view line) noexcept;

// The canonical line (without '\n'). Precondition: 1 <= leaves.size() <= kMaxPrunedLeaves.
[[nodiscard]] std::string serialize_pruned_record(const PrunedRecord& record);

// Strict parse of one line (without '\n'): exactly the canonical form above. Errors (integrity):
// "audit.pruned_malformed" (syntax, base64, not canonical, not a whole number of hashes, count
// 0 or above kMaxPrunedLeaves), "audit.pruned_count_mismatch" (count says more or fewer entries
// than the record holds leaf hashes).
[[nodiscard]] core::Result<PrunedRecord> parse_pruned_record(std::string_view line);
// The same, into *out (left unspecified on error).
[[nodiscard]] core::Status parse_pruned_record(std::string_view line, PrunedRecord* out);

// Adds [first, first + count) to ranges, merging it into the last range when they touch.
void add_pruned_range(std::vector<PrunedRange>& ranges, std::uint64_t first, std::uint64_t count);

}  // namespace licentra::audit
