// The one strict reader of the JSON records the daemon stores on the token (key records,
// approval requests, request outcomes and claims). A record is a JSON object whose members are
// each named, typed and read once; a record written by hand, by a newer release or by a broken
// writer is refused rather than half understood:
//   - malformed or truncated JSON, and anything but an object, is refused;
//   - a member name that appears twice in any object of the record is refused (a JSON parser
//     keeps one of them silently, and two readers could disagree on which);
//   - finish() refuses any member the caller did not ask for.
// Every error has the caller's kind and code and a message naming the record and the member:
//   "<record> is not a JSON object", "<record>: duplicate member \"x\"",
//   "<record> <member>: <why>", "<record>: unknown member \"x\"".
// Nothing throws. Not thread-safe: one reader per record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace licentra::core {

// How a record's errors are reported: its name in messages ("key record: created record"),
// and the kind and code its reader's callers have always returned.
struct RecordKind {
    std::string name;
    ErrorKind error_kind = ErrorKind::integrity;
    std::string error_code;
};

class JsonRecord {
  public:
    // Parses text as one JSON object (duplicate member names refused at every depth).
    [[nodiscard]] static Result<JsonRecord> parse(std::string_view text, RecordKind kind);
    // A nested object of a record already parsed (e.g. one element of an array member); parse()
    // has refused duplicate members in it.
    [[nodiscard]] static Result<JsonRecord> of(const nlohmann::json& value, RecordKind kind);

    // Required members fail when absent or of another type; optional ones only when present
    // and of another type. Every getter marks the member read.
    [[nodiscard]] Result<std::string> string(std::string_view name, std::size_t max_bytes);
    [[nodiscard]] Result<std::optional<std::string>> optional_string(std::string_view name,
                                                                     std::size_t max_bytes);
    // A JSON integer that fits std::int64_t.
    [[nodiscard]] Result<std::int64_t> integer(std::string_view name);
    // A non-negative JSON integer up to UINT32_MAX.
    [[nodiscard]] Result<std::uint32_t> uint32(std::string_view name);
    [[nodiscard]] Result<std::optional<std::uint32_t>> optional_uint32(std::string_view name);
    // Required, but null stands for "none".
    [[nodiscard]] Result<std::optional<std::uint32_t>> nullable_uint32(std::string_view name);
    // Unix milliseconds within the record range (checked_unix_millis), checked before any
    // caller converts or adds to it.
    [[nodiscard]] Result<std::int64_t> time(std::string_view name);
    [[nodiscard]] Result<std::optional<std::int64_t>> optional_time(std::string_view name);
    [[nodiscard]] Result<bool> boolean(std::string_view name);
    // A string naming one of a set of values; from_name gives the value (std::optional<T>,
    // nullopt for a name it does not know).
    template <class FromName>
    [[nodiscard]] auto one_of(std::string_view name, FromName from_name)
        -> Result<typename std::invoke_result_t<FromName, std::string_view>::value_type> {
        auto text = string(name, kMaxNameBytes);
        if (!text) return std::move(text).error();
        auto value = from_name(std::string_view(*text));
        if (!value) return error(name, "unknown \"" + *text + "\"");
        return std::move(*value);
    }
    // A hex string of exactly `bytes` bytes.
    [[nodiscard]] Result<Bytes> hex(std::string_view name, std::size_t bytes);
    // Any JSON value, for nested objects and arrays the caller checks itself.
    [[nodiscard]] Result<nlohmann::json> value(std::string_view name);

    // Refuses any member no getter asked for.
    [[nodiscard]] Status finish() const;

    // An error of this record about one member, for the caller's own checks of a value.
    [[nodiscard]] Error error(std::string_view member, std::string_view why) const;

  private:
    // Names of algorithms, states and decisions are a few bytes; the bound keeps junk short.
    static constexpr std::size_t kMaxNameBytes = 256;

    JsonRecord(nlohmann::json object, RecordKind kind);
    // The member, marked read; nullptr if absent.
    const nlohmann::json* find(std::string_view name);
    template <class T, class Read>
    Result<std::optional<T>> optional(std::string_view name, Read read);

    nlohmann::json object_;
    RecordKind kind_;
    std::set<std::string, std::less<>> read_;
};

}  // namespace licentra::core
