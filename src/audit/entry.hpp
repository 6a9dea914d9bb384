// The audit entry: a closed set of typed fields, serialized as one canonical JSON object per
// line. There is deliberately no free-form text field: every string is an identifier, a code or
// a hex digest drawn from a restricted alphabet, so claim values, PINs, tokens and error
// messages cannot be written into the log by mistake (DESIGN.md "Privacy").
//
// Canonical form: keys sorted (byte order), no whitespace, integers in shortest decimal form,
// strings from the restricted ASCII alphabets below (so no escapes), absent optional fields
// omitted. parse_entry() accepts only bytes that serialize_entry() reproduces exactly.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"

namespace licentra::audit {

enum class Outcome { allowed, denied, failed };

[[nodiscard]] std::string_view to_string(Outcome outcome) noexcept;

struct Entry {
    // Assigned by the log when the entry is appended; seq is the Merkle leaf index.
    std::uint64_t seq = 0;
    core::TimePoint time{};

    // Required.
    std::string principal;  // policy name of the caller, e.g. "license-server-eu"
    std::string action;     // e.g. "token.sign", "key.rotate.approve"
    Outcome result = Outcome::denied;

    // Optional, each omitted from the JSON when empty.
    std::optional<std::string> key;                  // key name
    std::optional<std::string> kid;                  // RFC 7638 thumbprint (base64url)
    std::optional<std::uint64_t> version;            // key version
    std::optional<std::string> reason;               // reason code, e.g. "policy.claim_forbidden"
    std::optional<std::string> request_id;           // request or approval id
    std::optional<std::string> token_sha256;         // 64 lowercase hex
    std::optional<std::string> policy_sha256;        // 64 lowercase hex
    std::optional<std::string> request_digest;       // 64 lowercase hex (lifecycle requests)
    std::optional<std::vector<std::string>> claims;  // claim names, sorted, unique
    std::optional<std::map<std::string, std::string>> pseudonyms;  // claim name -> 64 hex HMAC
    // The epoch whose key made the pseudonyms ("e<start>-<length>", audit/pseudonym_epoch.hpp);
    // absent when one key makes every pseudonym. Also names the epoch a pseudonym.destroy
    // entry destroyed.
    std::optional<std::string> pseudonym_epoch;
    // An audit.prune entry: the entries [pruned_first, pruned_first + pruned_count) whose
    // payloads that prune removed. Both or neither; pruned_count >= 1.
    std::optional<std::uint64_t> pruned_first;
    std::optional<std::uint64_t> pruned_count;

    bool operator==(const Entry&) const = default;
};

// Limits (also documented in docs/audit.md).
inline constexpr std::size_t kMaxIdentifierLength = 256;  // principal, action, key, kid, ...
inline constexpr std::size_t kMaxClaimNameLength = 128;
inline constexpr std::size_t kMaxClaims = 256;
inline constexpr std::size_t kMaxEntryBytes = 64 * 1024;  // one serialized line, without '\n'

// Checks every field against its alphabet and limits. seq and time are not checked (the log
// assigns them). Error kind usage, code "audit.entry_invalid", message names the field.
[[nodiscard]] core::Status validate_entry(const Entry& entry);

// The canonical JSON bytes of entry (no trailing newline). Fails like validate_entry.
[[nodiscard]] core::Result<std::string> serialize_entry(const Entry& entry);

// The canonical serialization split around the two members the log assigns when it orders an
// entry: serialize_entry(e) == head + "\"seq\":<seq>,\"time\":\"<time>\"" + tail for every seq
// and time (keys are sorted and no value can contain a quote, so seq and time always sit together
// between "result" and the keys after "time"). Lets the expensive part of serialization run
// before the entry's position is known. Fails like serialize_entry, with the 64 KiB limit checked
// against the longest possible seq.
struct EntryTemplate {
    std::string head;
    std::string tail;
};
[[nodiscard]] core::Result<EntryTemplate> serialize_entry_template(const Entry& entry);

// The middle part of a line: "seq":<seq>,"time":"<rfc3339 ms>" written into out; returns its
// length. time_text is core::format_rfc3339_ms(time). out must hold kMaxSeqTimeBytes.
inline constexpr std::size_t kMaxSeqTimeBytes = 96;
[[nodiscard]] std::size_t format_seq_time(std::uint64_t seq, std::string_view time_text,
                                          char* out) noexcept;

// Strict parse of one line (without '\n'): must be a JSON object with exactly the known fields,
// valid values, and be byte-identical to its own canonical serialization.
// Error kind integrity, code "audit.entry_malformed" or "audit.entry_not_canonical".
[[nodiscard]] core::Result<Entry> parse_entry(std::string_view line);

}  // namespace licentra::audit
