#include "service/request_records.hpp"

#include <algorithm>

namespace licentra::service {

using core::ErrorKind;
using core::make_error;

namespace {

core::Error malformed(const std::string& name, const std::string& why) {
    return make_error(ErrorKind::integrity, "service.request_record_malformed",
                      "request record " + name + ": " + why);
}

std::optional<policy::RequestState> result_from_name(std::string_view s) {
    if (s == "executed") return policy::RequestState::executed;
    if (s == "rejected") return policy::RequestState::rejected;
    if (s == "expired") return policy::RequestState::expired;
    if (s == "failed") return policy::RequestState::failed;
    return std::nullopt;
}

std::optional<Decision> decision_from_name(std::string_view s) {
    if (s == "execute") return Decision::execute;
    if (s == "reject") return Decision::reject;
    if (s == "expire") return Decision::expire;
    return std::nullopt;
}

// Reads {"at_ms": <int>, ...} members strictly; a time outside the record range (core/time) is
// refused before anyone converts or adds to it.
std::optional<std::int64_t> at_ms_of(const nlohmann::json& j) {
    auto it = j.find("at_ms");
    if (it == j.end() || !it->is_number_integer()) return std::nullopt;
    const auto v = it->get<std::int64_t>();
    if (!core::checked_unix_millis(v)) return std::nullopt;
    return v;
}

}  // namespace

std::string_view decision_name(Decision d) noexcept {
    switch (d) {
        case Decision::execute:
            return "execute";
        case Decision::reject:
            return "reject";
        case Decision::expire:
            return "expire";
        default:
            return "unknown";
    }
}

bool valid_request_id(std::string_view id) noexcept {
    return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

std::string OutcomeRecord::to_json() const {
    nlohmann::json j = {{"decision", std::string(decision_name(decision))},
                        {"result", std::string(policy::request_state_name(result))},
                        {"principal", principal},
                        {"by", by},
                        {"at_ms", at_ms}};
    if (reason) j["reason"] = *reason;
    if (version) j["version"] = *version;
    if (state) j["state"] = *state;
    if (kid) j["kid"] = *kid;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

core::Result<OutcomeRecord> OutcomeRecord::from_json(std::string_view text) {
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return malformed("outcome", "not a JSON object");
    static const std::vector<std::string> kAllowed = {
        "decision", "result", "principal", "by", "at_ms", "reason", "version", "state", "kid"};
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (std::find(kAllowed.begin(), kAllowed.end(), it.key()) == kAllowed.end()) {
            return malformed("outcome", "unknown member " + it.key());
        }
    }
    auto str = [&](const char* name) -> std::optional<std::string> {
        auto it = j.find(name);
        if (it == j.end() || !it->is_string()) return std::nullopt;
        return it->get<std::string>();
    };
    OutcomeRecord o;
    auto d = str("decision");
    auto r = str("result");
    auto p = str("principal");
    auto b = str("by");
    auto at = at_ms_of(j);
    if (!d || !r || !p || !b || !at) return malformed("outcome", "missing or mistyped member");
    auto decision = decision_from_name(*d);
    auto result = result_from_name(*r);
    if (!decision || !result) return malformed("outcome", "unknown decision or result");
    o.decision = *decision;
    o.result = *result;
    o.principal = *p;
    o.by = *b;
    o.at_ms = *at;
    if (j.contains("reason")) {
        if (!(o.reason = str("reason"))) return malformed("outcome", "bad reason");
    }
    if (j.contains("state")) {
        if (!(o.state = str("state"))) return malformed("outcome", "bad state");
    }
    if (j.contains("kid")) {
        if (!(o.kid = str("kid"))) return malformed("outcome", "bad kid");
    }
    if (j.contains("version")) {
        const auto& v = j.at("version");
        if (!v.is_number_unsigned() || v.get<std::uint64_t>() > UINT32_MAX) {
            return malformed("outcome", "bad version");
        }
        o.version = static_cast<std::uint32_t>(v.get<std::uint64_t>());
    }
    return o;
}

std::map<std::string, RecordList> group_by_request(const RecordList& records) {
    std::map<std::string, RecordList> out;
    for (const auto& [name, text] : records) {
        const std::string id = name.substr(0, name.find('/'));
        if (!valid_request_id(id)) continue;
        out[id].emplace_back(name, text);
    }
    return out;
}

core::Result<std::optional<StoredRequest>> fold_request(const std::string& id,
                                                        const RecordList& records,
                                                        core::TimePoint now) {
    const std::string approval_prefix = id + "/approval/";
    const std::string close_prefix = id + "/close/";
    const std::string decide_prefix = id + "/decide/";
    const std::string outcome_prefix = id + "/outcome/";
    std::optional<policy::ApprovalRequest> base;
    std::vector<policy::ApprovalRecord> approvals;
    std::optional<std::int64_t> newest_claim;
    std::optional<std::pair<std::string, OutcomeRecord>> outcome;  // lowest name wins
    for (const auto& [name, text] : records) {
        if (name == id) {
            auto r = policy::ApprovalRequest::from_json(text);
            if (!r) return r.error();
            if (r->id() != id) return malformed(name, "its id does not match its name");
            base = std::move(*r);
        } else if (name.rfind(approval_prefix, 0) == 0) {
            const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
            auto at = j.is_object() && j.size() == 1 ? at_ms_of(j) : std::nullopt;
            if (!at) return malformed(name, "bad approval record");
            std::string principal = name.substr(approval_prefix.size());
            if (!policy::valid_name(principal)) return malformed(name, "bad principal name");
            approvals.push_back({std::move(principal), core::from_unix_millis(*at)});
        } else if (name.rfind(close_prefix, 0) == 0 || name.rfind(decide_prefix, 0) == 0) {
            const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
            auto at = j.is_object() ? at_ms_of(j) : std::nullopt;
            if (!at) return malformed(name, "bad close claim");
            if (!newest_claim || *at > *newest_claim) newest_claim = *at;
        } else if (name.rfind(outcome_prefix, 0) == 0) {
            auto o = OutcomeRecord::from_json(text);
            if (!o) return malformed(name, o.error().message);
            if (!outcome || name < outcome->first) outcome.emplace(name, std::move(*o));
        }
    }
    if (!base) return std::optional<StoredRequest>{};
    StoredRequest s{std::move(*base), std::nullopt, std::nullopt};
    for (const auto& a : approvals) s.request.add_recorded_approval(a);
    if (outcome) {
        s.outcome = outcome->second;
        s.request.close_as(outcome->second.result, {outcome->second.principal,
                                                    core::from_unix_millis(outcome->second.at_ms)});
    } else if (newest_claim) {
        if (core::from_unix_millis(*newest_claim) + kCloseAbandoned < now) {
            s.request.close_as(policy::RequestState::failed,
                               {std::string(policy::kSystemPrincipal), now});
        } else {
            s.closing_since_ms = newest_claim;
        }
    }
    return std::optional<StoredRequest>{std::move(s)};
}

}  // namespace licentra::service
