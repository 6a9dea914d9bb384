#include "core/json_record.hpp"

#include <limits>
#include <utility>
#include <vector>

#include "core/time.hpp"

namespace licentra::core {

namespace {

std::string in_quotes(std::string_view s) { return "\"" + std::string(s) + "\""; }

Error refused(const RecordKind& kind, std::string_view why) {
    return make_error(kind.error_kind, kind.error_code, kind.name + std::string(why));
}

// An unsigned integer past INT64_MAX: nlohmann reads it back as a negative std::int64_t.
std::optional<std::uint64_t> past_int64(const nlohmann::json& v) {
    if (!v.is_number_unsigned()) return std::nullopt;
    const auto u = v.get<std::uint64_t>();
    if (u <= std::uint64_t{std::numeric_limits<std::int64_t>::max()}) return std::nullopt;
    return u;
}

}  // namespace

Result<JsonRecord> JsonRecord::parse(std::string_view text, RecordKind kind) {
    // nlohmann's parser keeps the last of two equal member names; the callback sees every key
    // as it is read, so each open object remembers its names and the first repeat is kept.
    std::vector<std::set<std::string, std::less<>>> open;
    std::optional<std::string> duplicate;
    const nlohmann::json::parser_callback_t note_keys =
        [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
            using Event = nlohmann::json::parse_event_t;
            if (event == Event::object_start) {
                open.emplace_back();
            } else if (event == Event::object_end && !open.empty()) {
                open.pop_back();
            } else if (event == Event::key && !open.empty() && parsed.is_string()) {
                const auto& name = parsed.get_ref<const std::string&>();
                if (!open.back().insert(name).second && !duplicate) duplicate = name;
            }
            return true;
        };
    nlohmann::json j = nlohmann::json::parse(text, note_keys, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return refused(kind, " is not a JSON object");
    if (duplicate) return refused(kind, ": duplicate member " + in_quotes(*duplicate));
    return JsonRecord(std::move(j), std::move(kind));
}

Result<JsonRecord> JsonRecord::of(const nlohmann::json& value, RecordKind kind) {
    if (!value.is_object()) return refused(kind, " is not a JSON object");
    return JsonRecord(value, std::move(kind));
}

JsonRecord::JsonRecord(nlohmann::json object, RecordKind kind)
    : object_(std::move(object)), kind_(std::move(kind)) {}

const nlohmann::json* JsonRecord::find(std::string_view name) {
    read_.emplace(name);
    auto it = object_.find(name);
    return it == object_.end() ? nullptr : &*it;
}

Error JsonRecord::error(std::string_view member, std::string_view why) const {
    return refused(kind_, " " + std::string(member) + ": " + std::string(why));
}

template <class T, class Read>
Result<std::optional<T>> JsonRecord::optional(std::string_view name, Read read) {
    if (object_.find(name) == object_.end()) {
        read_.emplace(name);
        return std::optional<T>{};
    }
    auto v = read();
    if (!v) return std::move(v).error();
    return std::optional<T>{std::move(v).value()};
}

Result<std::string> JsonRecord::string(std::string_view name, std::size_t max_bytes) {
    const nlohmann::json* v = find(name);
    if (v == nullptr) return error(name, "is missing");
    if (!v->is_string()) return error(name, "must be a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max_bytes) {
        return error(name, "is longer than " + std::to_string(max_bytes) + " bytes");
    }
    return s;
}

Result<std::optional<std::string>> JsonRecord::optional_string(std::string_view name,
                                                               std::size_t max_bytes) {
    return optional<std::string>(name, [&] { return string(name, max_bytes); });
}

Result<std::int64_t> JsonRecord::integer(std::string_view name) {
    const nlohmann::json* v = find(name);
    if (v == nullptr) return error(name, "is missing");
    if (!v->is_number_integer()) return error(name, "must be an integer");
    if (auto u = past_int64(*v)) return error(name, std::to_string(*u) + " is out of range");
    return v->get<std::int64_t>();
}

Result<std::uint32_t> JsonRecord::uint32(std::string_view name) {
    const nlohmann::json* v = find(name);
    if (v == nullptr) return error(name, "is missing");
    if (!v->is_number_unsigned() ||
        v->get<std::uint64_t>() > std::numeric_limits<std::uint32_t>::max()) {
        return error(name, "must be an integer from 0 to 4294967295");
    }
    return static_cast<std::uint32_t>(v->get<std::uint64_t>());
}

Result<std::optional<std::uint32_t>> JsonRecord::optional_uint32(std::string_view name) {
    return optional<std::uint32_t>(name, [&] { return uint32(name); });
}

Result<std::optional<std::uint32_t>> JsonRecord::nullable_uint32(std::string_view name) {
    const nlohmann::json* v = find(name);
    if (v == nullptr) return error(name, "is missing");
    if (v->is_null()) return std::optional<std::uint32_t>{};
    return optional<std::uint32_t>(name, [&] { return uint32(name); });
}

Result<std::int64_t> JsonRecord::time(std::string_view name) {
    const nlohmann::json* v = find(name);
    if (v == nullptr) return error(name, "is missing");
    if (!v->is_number_integer()) return error(name, "must be an integer");
    if (auto u = past_int64(*v)) {
        return error(name, "time " + std::to_string(*u) + " ms since the epoch is out of range");
    }
    auto ms = checked_unix_millis(v->get<std::int64_t>());
    if (!ms) return error(name, ms.error().message);
    return ms;
}

Result<std::optional<std::int64_t>> JsonRecord::optional_time(std::string_view name) {
    return optional<std::int64_t>(name, [&] { return time(name); });
}

Result<bool> JsonRecord::boolean(std::string_view name) {
    const nlohmann::json* v = find(name);
    if (v == nullptr) return error(name, "is missing");
    if (!v->is_boolean()) return error(name, "must be true or false");
    return v->get<bool>();
}

Result<Bytes> JsonRecord::hex(std::string_view name, std::size_t bytes) {
    const nlohmann::json* v = find(name);
    if (v == nullptr) return error(name, "is missing");
    const std::string why = "must be " + std::to_string(bytes) + " bytes in hex";
    if (!v->is_string() || v->get_ref<const std::string&>().size() != 2 * bytes) {
        return error(name, why);
    }
    auto decoded = hex_decode(v->get_ref<const std::string&>());
    if (!decoded) return error(name, why);
    return decoded;
}

Result<nlohmann::json> JsonRecord::value(std::string_view name) {
    const nlohmann::json* v = find(name);
    if (v == nullptr) return error(name, "is missing");
    return *v;
}

Status JsonRecord::finish() const {
    for (auto it = object_.begin(); it != object_.end(); ++it) {
        if (read_.count(it.key()) == 0) {
            return refused(kind_, ": unknown member " + in_quotes(it.key()));
        }
    }
    return ok_status();
}

}  // namespace licentra::core
