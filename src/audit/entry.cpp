#include "audit/entry.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>

#include "audit/pseudonym_epoch.hpp"

namespace licentra::audit {

namespace {

using core::ErrorKind;
using core::make_error;
using Json = nlohmann::json;

bool is_identifier_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == ':' || c == '@' || c == '/' || c == '+' || c == '=';
}

bool is_claim_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == ':';
}

bool is_identifier(std::string_view s) {
    return !s.empty() && s.size() <= kMaxIdentifierLength &&
           std::all_of(s.begin(), s.end(), is_identifier_char);
}

bool is_claim_name(std::string_view s) {
    return !s.empty() && s.size() <= kMaxClaimNameLength &&
           std::all_of(s.begin(), s.end(), is_claim_name_char);
}

bool is_sha256_hex(std::string_view s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

core::Error invalid(std::string_view field, std::string_view what) {
    return make_error(ErrorKind::usage, "audit.entry_invalid",
                      "field '" + std::string(field) + "' " + std::string(what));
}

core::Error malformed(std::string message) {
    return make_error(ErrorKind::integrity, "audit.entry_malformed", std::move(message));
}

constexpr std::string_view kIdentifierRule = "must be 1-256 characters of [A-Za-z0-9._:@/+=-]";

}  // namespace

std::string_view to_string(Outcome outcome) noexcept {
    switch (outcome) {
        case Outcome::allowed:
            return "allowed";
        case Outcome::denied:
            return "denied";
        case Outcome::failed:
            return "failed";
        default:
            return "invalid";
    }
}

core::Status validate_entry(const Entry& e) {
    if (!is_identifier(e.principal)) return invalid("principal", kIdentifierRule);
    if (!is_identifier(e.action)) return invalid("action", kIdentifierRule);
    if (e.result != Outcome::allowed && e.result != Outcome::denied &&
        e.result != Outcome::failed) {
        return invalid("result", "is not allowed/denied/failed");
    }
    const std::pair<std::string_view, const std::optional<std::string>*> identifiers[] = {
        {"key", &e.key}, {"kid", &e.kid}, {"reason", &e.reason}, {"request_id", &e.request_id}};
    for (const auto& [name, value] : identifiers) {
        if (*value && !is_identifier(**value)) return invalid(name, kIdentifierRule);
    }
    const std::pair<std::string_view, const std::optional<std::string>*> digests[] = {
        {"token_sha256", &e.token_sha256},
        {"policy_sha256", &e.policy_sha256},
        {"request_digest", &e.request_digest}};
    for (const auto& [name, value] : digests) {
        if (*value && !is_sha256_hex(**value)) return invalid(name, "must be 64 lowercase hex");
    }
    if (e.claims) {
        if (e.claims->size() > kMaxClaims) return invalid("claims", "has too many names");
        for (std::size_t i = 0; i < e.claims->size(); ++i) {
            const std::string& c = (*e.claims)[i];
            if (!is_claim_name(c)) return invalid("claims", "contains an invalid claim name");
            if (i > 0 && !((*e.claims)[i - 1] < c)) {
                return invalid("claims", "must be sorted and unique");
            }
        }
    }
    if (e.pseudonym_epoch && !PseudonymEpoch::parse(*e.pseudonym_epoch)) {
        return invalid("pseudonym_epoch", "must be e<start>-<length> (Unix seconds)");
    }
    if (e.pruned_first.has_value() != e.pruned_count.has_value()) {
        return invalid("pruned_count", "and pruned_first come together");
    }
    if (e.pruned_count &&
        (*e.pruned_count == 0 ||
         *e.pruned_first > std::numeric_limits<std::uint64_t>::max() - *e.pruned_count)) {
        return invalid("pruned_count", "must be at least 1 and end within 2^64");
    }
    if (e.pseudonyms) {
        if (e.pseudonyms->size() > kMaxClaims) return invalid("pseudonyms", "has too many names");
        for (const auto& [name, value] : *e.pseudonyms) {
            if (!is_claim_name(name)) return invalid("pseudonyms", "has an invalid claim name");
            if (!is_sha256_hex(value))
                return invalid("pseudonyms", "values must be 64 lowercase hex");
        }
    }
    return core::ok_status();
}

core::Result<std::string> serialize_entry(const Entry& e) {
    if (auto st = validate_entry(e); !st) return std::move(st).error();
    // nlohmann::json objects are std::map: dump() writes keys in byte order, no whitespace.
    Json j = Json::object();
    j["seq"] = e.seq;
    j["time"] = core::format_rfc3339_ms(e.time);
    j["principal"] = e.principal;
    j["action"] = e.action;
    j["result"] = std::string(to_string(e.result));
    if (e.key) j["key"] = *e.key;
    if (e.kid) j["kid"] = *e.kid;
    if (e.version) j["version"] = *e.version;
    if (e.reason) j["reason"] = *e.reason;
    if (e.request_id) j["request_id"] = *e.request_id;
    if (e.token_sha256) j["token_sha256"] = *e.token_sha256;
    if (e.policy_sha256) j["policy_sha256"] = *e.policy_sha256;
    if (e.request_digest) j["request_digest"] = *e.request_digest;
    if (e.claims) j["claims"] = *e.claims;
    if (e.pseudonyms) j["pseudonyms"] = *e.pseudonyms;
    if (e.pseudonym_epoch) j["pseudonym_epoch"] = *e.pseudonym_epoch;
    if (e.pruned_first) j["pruned_first"] = *e.pruned_first;
    if (e.pruned_count) j["pruned_count"] = *e.pruned_count;
    std::string out = j.dump();
    if (out.size() > kMaxEntryBytes) return invalid("entry", "exceeds 64 KiB serialized");
    return out;
}

core::Result<EntryTemplate> serialize_entry_template(const Entry& entry) {
    Entry e = entry;
    e.seq = 0;
    e.time = core::TimePoint{};
    auto line = serialize_entry(e);
    if (!line) return std::move(line).error();
    char mid[kMaxSeqTimeBytes];
    const std::string epoch = core::format_rfc3339_ms(e.time);
    const std::string_view marker(mid, format_seq_time(0, epoch, mid));
    const std::size_t pos = line->find(marker);
    if (pos == std::string::npos) {
        return make_error(ErrorKind::internal, "audit.entry_template", "seq/time not found");
    }
    EntryTemplate t;
    t.head = line->substr(0, pos);
    t.tail = line->substr(pos + marker.size());
    // Longest seq (20 digits) instead of 0: the line must fit whatever index it gets.
    if (line->size() + 19 > kMaxEntryBytes) return invalid("entry", "exceeds 64 KiB serialized");
    return t;
}

std::size_t format_seq_time(std::uint64_t seq, std::string_view time_text, char* out) noexcept {
    constexpr std::string_view kSeq = "\"seq\":";
    constexpr std::string_view kTime = ",\"time\":\"";
    char* p = out;
    p = std::copy(kSeq.begin(), kSeq.end(), p);
    p = std::to_chars(p, p + 20, seq).ptr;
    p = std::copy(kTime.begin(), kTime.end(), p);
    const std::size_t n = std::min<std::size_t>(time_text.size(), 32);
    p = std::copy(time_text.begin(), time_text.begin() + static_cast<std::ptrdiff_t>(n), p);
    *p++ = '"';
    return static_cast<std::size_t>(p - out);
}

namespace {
core::Result<Entry> parse_entry_unchecked(std::string_view line) {
    if (line.size() > kMaxEntryBytes) return malformed("entry exceeds 64 KiB");
    Json j = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return malformed("not valid JSON");
    if (!j.is_object()) return malformed("not a JSON object");

    Entry e;
    auto get_string = [&](const char* name, bool required,
                          std::optional<std::string>& out) -> core::Status {
        auto it = j.find(name);
        if (it == j.end()) {
            if (required) return malformed(std::string("missing field '") + name + "'");
            return core::ok_status();
        }
        if (!it->is_string()) return malformed(std::string("field '") + name + "' is not a string");
        out = it->get<std::string>();
        return core::ok_status();
    };
    auto get_uint = [&](const char* name, bool required,
                        std::optional<std::uint64_t>& out) -> core::Status {
        auto it = j.find(name);
        if (it == j.end()) {
            if (required) return malformed(std::string("missing field '") + name + "'");
            return core::ok_status();
        }
        if (!it->is_number_unsigned()) {
            return malformed(std::string("field '") + name + "' is not an unsigned integer");
        }
        out = it->get<std::uint64_t>();
        return core::ok_status();
    };

    static constexpr std::string_view kKnown[] = {
        "action",          "claims",     "key",          "kid",
        "policy_sha256",   "principal",  "pruned_count", "pruned_first",
        "pseudonym_epoch", "pseudonyms", "reason",       "request_digest",
        "request_id",      "result",     "seq",          "time",
        "token_sha256",    "version"};
    for (const auto& item : j.items()) {
        if (std::find(std::begin(kKnown), std::end(kKnown), item.key()) == std::end(kKnown)) {
            return malformed("unknown field");
        }
    }

    std::optional<std::uint64_t> seq;
    std::optional<std::string> time, principal, action, result;
    for (const core::Status& st :
         {get_uint("seq", true, seq), get_string("time", true, time),
          get_string("principal", true, principal), get_string("action", true, action),
          get_string("result", true, result), get_string("key", false, e.key),
          get_string("kid", false, e.kid), get_uint("version", false, e.version),
          get_string("reason", false, e.reason), get_string("request_id", false, e.request_id),
          get_string("token_sha256", false, e.token_sha256),
          get_string("policy_sha256", false, e.policy_sha256),
          get_string("request_digest", false, e.request_digest),
          get_string("pseudonym_epoch", false, e.pseudonym_epoch),
          get_uint("pruned_first", false, e.pruned_first),
          get_uint("pruned_count", false, e.pruned_count)}) {
        if (!st) return st.error();
    }
    e.seq = *seq;
    auto t = core::parse_rfc3339_ms(*time);
    if (!t) return malformed("field 'time' is not RFC 3339 UTC with milliseconds");
    e.time = *t;
    e.principal = std::move(*principal);
    e.action = std::move(*action);
    if (*result == "allowed") {
        e.result = Outcome::allowed;
    } else if (*result == "denied") {
        e.result = Outcome::denied;
    } else if (*result == "failed") {
        e.result = Outcome::failed;
    } else {
        return malformed("field 'result' is not allowed/denied/failed");
    }
    if (auto it = j.find("claims"); it != j.end()) {
        if (!it->is_array()) return malformed("field 'claims' is not an array");
        std::vector<std::string> names;
        for (const auto& v : *it) {
            if (!v.is_string()) return malformed("field 'claims' holds a non-string");
            names.push_back(v.get<std::string>());
        }
        e.claims = std::move(names);
    }
    if (auto it = j.find("pseudonyms"); it != j.end()) {
        if (!it->is_object()) return malformed("field 'pseudonyms' is not an object");
        std::map<std::string, std::string> p;
        for (const auto& item : it->items()) {
            if (!item.value().is_string())
                return malformed("field 'pseudonyms' holds a non-string");
            p.emplace(item.key(), item.value().get<std::string>());
        }
        e.pseudonyms = std::move(p);
    }
    if (auto st = validate_entry(e); !st) return malformed(st.error().message);

    // Re-serialize: anything but the canonical bytes (whitespace, key order, escapes, duplicate
    // keys, number forms, milliseconds spelled differently) is damage, not an alternative form.
    auto canonical = serialize_entry(e);
    if (!canonical || *canonical != line) {
        return make_error(ErrorKind::integrity, "audit.entry_not_canonical",
                          "entry is not in canonical form");
    }
    return e;
}
}  // namespace

core::Result<Entry> parse_entry(std::string_view line) {
    try {
        return parse_entry_unchecked(line);
    } catch (const std::exception&) {
        // nlohmann::json reports type and encoding problems by exception; none should reach
        // here after the checks above, but a parser of hostile input must not throw.
        return malformed("entry could not be decoded");
    }
}

}  // namespace licentra::audit
