// Pseudonym epochs (docs/privacy.md, docs/adr/0006-pseudonym-epochs.md): with epochs in the
// policy, a claim's pseudonym is an HMAC under the key of the epoch the entry falls in,
// "licentra/pseudonym/e<start>-<length>" (Unix seconds). Epochs start at multiples of their
// length since 1970-01-01T00:00:00Z, so every replica computes the same epoch for an instant.
// An epoch's key is destroyed `retention` after the epoch ends; its pseudonyms then link to no
// one, and the log, which names the epoch in each entry, stays as it was.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/time.hpp"

namespace licentra::audit {

inline constexpr std::string_view kPseudonymLabelPrefix = "licentra/pseudonym/";

struct PseudonymEpoch {
    std::int64_t start_s = 0;   // Unix seconds, a multiple of length_s
    std::int64_t length_s = 0;  // > 0

    // "e<start>-<length>": the name entries carry in "pseudonym_epoch".
    [[nodiscard]] std::string name() const;
    // "licentra/pseudonym/" + name(): the HMAC key's label on the token.
    [[nodiscard]] std::string label() const;
    [[nodiscard]] core::TimePoint start() const;
    [[nodiscard]] core::TimePoint end() const;
    // When its key is to be destroyed: end() + retention.
    [[nodiscard]] core::TimePoint destroy_at(std::chrono::seconds retention) const;
    // The epoch after this one (same length).
    [[nodiscard]] PseudonymEpoch next() const { return {start_s + length_s, length_s}; }

    // Parses name(); refuses anything else (leading zeros, a start that is not a multiple of
    // the length, values past what the clock can hold).
    [[nodiscard]] static std::optional<PseudonymEpoch> parse(std::string_view name);
    // Parses label(); nullopt for other labels (e.g. the single key "licentra/pseudonym/v1").
    [[nodiscard]] static std::optional<PseudonymEpoch> from_label(std::string_view label);

    friend bool operator==(const PseudonymEpoch&, const PseudonymEpoch&) = default;
};

// The epoch of length `length` (> 0) that holds instant t.
[[nodiscard]] PseudonymEpoch epoch_at(core::TimePoint t, std::chrono::seconds length);

}  // namespace licentra::audit
