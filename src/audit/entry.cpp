#include "audit/entry.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <iterator>
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
           std::all_of(s.begin(), s.end(), [](char c) { return is_identifier_char(c); });
}

bool is_claim_name(std::string_view s) {
    return !s.empty() && s.size() <= kMaxClaimNameLength &&
           std::all_of(s.begin(), s.end(), [](char c) { return is_claim_name_char(c); });
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

// The canonical JSON object of an entry, member by member: no whitespace, strings written as
// they are (the caller has validated them), unsigned integers in shortest decimal form.
// Members must be added in byte order of their keys.
class CanonicalWriter {
  public:
    CanonicalWriter() { out_.reserve(512); }
    void string(std::string_view key, std::string_view value) {
        name(key);
        quoted(value);
    }
    void number(std::string_view key, std::uint64_t value) {
        name(key);
        char digits[20];
        const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
        out_.append(digits, end);
    }
    void array(std::string_view key, const std::vector<std::string>& values) {
        name(key);
        out_ += '[';
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (i > 0) out_ += ',';
            quoted(values[i]);
        }
        out_ += ']';
    }
    void object(std::string_view key, const std::map<std::string, std::string>& members) {
        name(key);
        out_ += '{';
        bool first = true;
        for (const auto& [k, v] : members) {
            if (!first) out_ += ',';
            first = false;
            quoted(k);
            out_ += ':';
            quoted(v);
        }
        out_ += '}';
    }
    [[nodiscard]] std::string finish() && {
        out_ += '}';
        return std::move(out_);
    }

  private:
    void name(std::string_view key) {
        out_ += out_.empty() ? '{' : ',';
        quoted(key);
        out_ += ':';
    }
    void quoted(std::string_view s) {
        out_ += '"';
        out_ += s;
        out_ += '"';
    }

    std::string out_;
};

// The canonical bytes of e, which validate_entry has accepted.
std::string canonical_line(const Entry& e) {
    // Written directly rather than through a JSON document: this runs once per entry when a log
    // is written and again when it is verified. validate_entry limits every string to alphabets
    // without '"', '\\' or control characters, so no value needs escaping; the members are
    // written in byte order of their keys.
    CanonicalWriter w;
    w.string("action", e.action);
    if (e.claims) w.array("claims", *e.claims);
    if (e.key) w.string("key", *e.key);
    if (e.kid) w.string("kid", *e.kid);
    if (e.policy_sha256) w.string("policy_sha256", *e.policy_sha256);
    w.string("principal", e.principal);
    if (e.pruned_count) w.number("pruned_count", *e.pruned_count);
    if (e.pruned_first) w.number("pruned_first", *e.pruned_first);
    if (e.pseudonym_epoch) w.string("pseudonym_epoch", *e.pseudonym_epoch);
    if (e.pseudonyms) w.object("pseudonyms", *e.pseudonyms);
    if (e.reason) w.string("reason", *e.reason);
    if (e.request_digest) w.string("request_digest", *e.request_digest);
    if (e.request_id) w.string("request_id", *e.request_id);
    w.string("result", to_string(e.result));
    w.number("seq", e.seq);
    w.string("time", core::format_rfc3339_ms(e.time));
    if (e.token_sha256) w.string("token_sha256", *e.token_sha256);
    if (e.version) w.number("version", *e.version);
    return std::move(w).finish();
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
    std::string out = canonical_line(e);
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

// The members an entry may have, in byte order of their names.
constexpr std::string_view kKnown[] = {"action",       "claims",        "key",
                                       "kid",          "policy_sha256", "principal",
                                       "pruned_count", "pruned_first",  "pseudonym_epoch",
                                       "pseudonyms",   "reason",        "request_digest",
                                       "request_id",   "result",        "seq",
                                       "time",         "token_sha256",  "version"};
constexpr std::size_t kFieldCount = std::size(kKnown);

// The position of name in kKnown, or kFieldCount.
constexpr std::size_t field_index(std::string_view name) {
    const auto* it = std::lower_bound(std::begin(kKnown), std::end(kKnown), name);
    if (it == std::end(kKnown) || *it != name) return kFieldCount;
    return static_cast<std::size_t>(it - std::begin(kKnown));
}
// A field's position, found when compiling.
consteval std::size_t field(std::string_view name) {
    const std::size_t i = field_index(name);
    if (i == kFieldCount) throw "not a field of an entry";
    return i;
}
constexpr std::size_t kClaimsField = field("claims");
constexpr std::size_t kPseudonymsField = field("pseudonyms");
static_assert(std::is_sorted(std::begin(kKnown), std::end(kKnown)));

// One line as nlohmann's parser reports it through its SAX interface: the top-level members
// with the values an entry can hold. The same parser builds nlohmann::json documents; keeping
// only these values instead costs a fraction (the document of every entry, built and torn down,
// dominated the time to verify a log). What is kept is what the document would hold: a member
// that appears again replaces the earlier one, as does a repeated key in "pseudonyms".
class EntryMembers {
  public:
    enum class Type { absent, string, unsigned_number, array, object, other };
    struct Member {
        Type type = Type::absent;
        std::string text;          // Type::string
        std::uint64_t number = 0;  // Type::unsigned_number
    };

    // Parses line strictly (a JSON text and nothing after it). False: not valid JSON.
    bool parse(std::string_view line) {
        return Json::sax_parse(line.begin(), line.end(), this,
                               nlohmann::detail::input_format_t::json,
                               /*strict=*/true);
    }

    [[nodiscard]] bool is_object() const { return root_ == Type::object; }
    [[nodiscard]] bool has_unknown() const { return unknown_; }
    [[nodiscard]] Member& member(std::size_t index) { return members_[index]; }
    // The elements of "claims" if it is an array; claims_all_strings(): each one is a string.
    [[nodiscard]] std::vector<std::string>& claims() { return claims_; }
    [[nodiscard]] bool claims_all_strings() const { return claims_strings_; }
    // The members of "pseudonyms" if it is an object; nullopt: a value that is not a string.
    [[nodiscard]] std::map<std::string, std::optional<std::string>>& pseudonyms() {
        return pseudonyms_;
    }

    // The SAX interface (nlohmann::json_sax). Every event returns true: only a syntax error
    // stops the parser.
    bool null() { return scalar(Type::other); }
    bool boolean(bool /*value*/) { return scalar(Type::other); }
    bool number_integer(Json::number_integer_t /*value*/) { return scalar(Type::other); }
    bool number_float(Json::number_float_t /*value*/, const Json::string_t& /*text*/) {
        return scalar(Type::other);
    }
    bool binary(Json::binary_t& /*value*/) { return scalar(Type::other); }
    bool number_unsigned(Json::number_unsigned_t value) {
        if (depth_ == 1 && current_ < kFieldCount) members_[current_].number = value;
        return scalar(Type::unsigned_number);
    }
    bool string(Json::string_t& value) {
        if (depth_ == 1 && current_ < kFieldCount) {
            members_[current_].text = value;
        } else if (depth_ == 2 && nested_ == Nested::claims) {
            claims_.push_back(value);
            return true;
        } else if (depth_ == 2 && nested_ == Nested::pseudonyms) {
            pseudonyms_[pseudonym_key_] = value;
            return true;
        }
        return scalar(Type::string);
    }
    bool start_object(std::size_t /*elements*/) { return open(Type::object); }
    bool start_array(std::size_t /*elements*/) { return open(Type::array); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool key(Json::string_t& name) {
        if (depth_ == 1 && root_ == Type::object) {
            // A canonical line has its members in the order of kKnown: look after the last one
            // first.
            const std::size_t next = current_ < kFieldCount ? current_ + 1 : 0;
            const auto* it = std::find(std::begin(kKnown) + next, std::end(kKnown), name);
            current_ = it != std::end(kKnown) ? static_cast<std::size_t>(it - std::begin(kKnown))
                                              : field_index(name);
            if (current_ == kFieldCount) unknown_ = true;
        } else if (depth_ == 2 && nested_ == Nested::pseudonyms) {
            pseudonym_key_ = name;
        }
        return true;
    }
    bool parse_error(std::size_t /*position*/, const std::string& /*token*/,
                     const nlohmann::detail::exception& /*error*/) {
        return false;
    }

  private:
    enum class Nested { none, claims, pseudonyms };  // the container open at depth 2, if kept

    // A value that holds no other: the root, a top-level member's, or one nested in them.
    bool scalar(Type type) {
        if (depth_ == 0) root_ = type;
        if (depth_ == 1) set(type);
        if (depth_ == 2) not_a_string();
        return true;
    }

    bool open(Type type) {
        if (depth_ == 0) root_ = type;
        if (depth_ == 1) {
            set(type);
            if (current_ == kClaimsField && type == Type::array) nested_ = Nested::claims;
            if (current_ == kPseudonymsField && type == Type::object) {
                nested_ = Nested::pseudonyms;
            }
        }
        if (depth_ == 2) not_a_string();
        ++depth_;
        return true;
    }

    bool close() {
        --depth_;
        if (depth_ == 1) nested_ = Nested::none;
        return true;
    }

    // The value of the current top-level member, replacing any earlier one of the same name.
    void set(Type type) {
        if (root_ != Type::object || current_ == kFieldCount) return;
        members_[current_].type = type;
        if (current_ == kClaimsField) {
            claims_.clear();
            claims_strings_ = true;
        }
        if (current_ == kPseudonymsField) pseudonyms_.clear();
    }

    // A value directly inside the kept "claims" or "pseudonyms" that is not a string.
    void not_a_string() {
        if (nested_ == Nested::claims) claims_strings_ = false;
        if (nested_ == Nested::pseudonyms) pseudonyms_[pseudonym_key_].reset();
    }

    std::size_t depth_ = 0;
    Type root_ = Type::absent;
    bool unknown_ = false;
    std::size_t current_ = kFieldCount;  // the top-level member being read (kFieldCount: unknown)
    std::array<Member, kFieldCount> members_;
    Nested nested_ = Nested::none;
    std::vector<std::string> claims_;
    bool claims_strings_ = true;
    std::map<std::string, std::optional<std::string>> pseudonyms_;
    std::string pseudonym_key_;
};

core::Result<Entry> parse_entry_unchecked(std::string_view line) {
    if (line.size() > kMaxEntryBytes) return malformed("entry exceeds 64 KiB");
    EntryMembers j;
    if (!j.parse(line)) return malformed("not valid JSON");
    if (!j.is_object()) return malformed("not a JSON object");
    if (j.has_unknown()) return malformed("unknown field");

    using Type = EntryMembers::Type;
    Entry e;
    auto get_string = [&](std::size_t index, bool required,
                          std::optional<std::string>& out) -> core::Status {
        const std::string_view name = kKnown[index];
        EntryMembers::Member& m = j.member(index);
        if (m.type == Type::absent) {
            if (required) return malformed("missing field '" + std::string(name) + "'");
            return core::ok_status();
        }
        if (m.type != Type::string) {
            return malformed("field '" + std::string(name) + "' is not a string");
        }
        out = std::move(m.text);
        return core::ok_status();
    };
    auto get_uint = [&](std::size_t index, bool required,
                        std::optional<std::uint64_t>& out) -> core::Status {
        const std::string_view name = kKnown[index];
        const EntryMembers::Member& m = j.member(index);
        if (m.type == Type::absent) {
            if (required) return malformed("missing field '" + std::string(name) + "'");
            return core::ok_status();
        }
        if (m.type != Type::unsigned_number) {
            return malformed("field '" + std::string(name) + "' is not an unsigned integer");
        }
        out = m.number;
        return core::ok_status();
    };

    // The first field in this order that is missing or of the wrong type is the one reported.
    std::optional<std::uint64_t> seq;
    std::optional<std::string> time, principal, action, result;
    struct Wanted {
        std::size_t index;  // in kKnown
        bool required;
        std::optional<std::string>* text;      // a string field, or
        std::optional<std::uint64_t>* number;  // an unsigned integer field
    };
    const Wanted wanted[] = {{field("seq"), true, nullptr, &seq},
                             {field("time"), true, &time, nullptr},
                             {field("principal"), true, &principal, nullptr},
                             {field("action"), true, &action, nullptr},
                             {field("result"), true, &result, nullptr},
                             {field("key"), false, &e.key, nullptr},
                             {field("kid"), false, &e.kid, nullptr},
                             {field("version"), false, nullptr, &e.version},
                             {field("reason"), false, &e.reason, nullptr},
                             {field("request_id"), false, &e.request_id, nullptr},
                             {field("token_sha256"), false, &e.token_sha256, nullptr},
                             {field("policy_sha256"), false, &e.policy_sha256, nullptr},
                             {field("request_digest"), false, &e.request_digest, nullptr},
                             {field("pseudonym_epoch"), false, &e.pseudonym_epoch, nullptr},
                             {field("pruned_first"), false, nullptr, &e.pruned_first},
                             {field("pruned_count"), false, nullptr, &e.pruned_count}};
    for (const Wanted& w : wanted) {
        auto st = w.text != nullptr ? get_string(w.index, w.required, *w.text)
                                    : get_uint(w.index, w.required, *w.number);
        if (!st) return std::move(st).error();
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
    if (const Type type = j.member(kClaimsField).type; type != Type::absent) {
        if (type != Type::array) return malformed("field 'claims' is not an array");
        if (!j.claims_all_strings()) return malformed("field 'claims' holds a non-string");
        e.claims = std::move(j.claims());
    }
    if (const Type type = j.member(kPseudonymsField).type; type != Type::absent) {
        if (type != Type::object) return malformed("field 'pseudonyms' is not an object");
        std::map<std::string, std::string> p;
        for (auto& [name, value] : j.pseudonyms()) {
            if (!value) return malformed("field 'pseudonyms' holds a non-string");
            p.emplace(name, std::move(*value));
        }
        e.pseudonyms = std::move(p);
    }
    if (auto st = validate_entry(e); !st) return malformed(st.error().message);

    // Re-serialize: anything but the canonical bytes (whitespace, key order, escapes, duplicate
    // keys, number forms, milliseconds spelled differently) is damage, not an alternative form.
    if (canonical_line(e) != line) {
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
