#include "service/request_records.hpp"

#include <algorithm>
#include <utility>

#include "core/json_record.hpp"

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

// Names, error codes and key ids are short; the bound only keeps junk out of memory and logs.
constexpr std::size_t kMaxRecordString = 4096;

core::RecordKind record_kind(const std::string& name, std::string_view what) {
    return {"request record " + name + ": " + std::string(what), ErrorKind::integrity,
            "service.request_record_malformed"};
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
    auto r = core::JsonRecord::parse(
        text, {"request record outcome", ErrorKind::integrity, "service.request_record_malformed"});
    if (!r) return std::move(r).error();
    auto decision = r->one_of("decision", decision_from_name);
    if (!decision) return std::move(decision).error();
    auto result = r->one_of("result", result_from_name);
    if (!result) return std::move(result).error();
    OutcomeRecord o;
    o.decision = *decision;
    o.result = *result;
    for (auto [name, slot] : {std::pair{"principal", &o.principal}, std::pair{"by", &o.by}}) {
        auto v = r->string(name, kMaxRecordString);
        if (!v) return std::move(v).error();
        *slot = std::move(*v);
    }
    auto at = r->time("at_ms");
    if (!at) return std::move(at).error();
    o.at_ms = *at;
    for (auto [name, slot] :
         {std::pair{"reason", &o.reason}, std::pair{"state", &o.state}, std::pair{"kid", &o.kid}}) {
        auto v = r->optional_string(name, kMaxRecordString);
        if (!v) return std::move(v).error();
        *slot = std::move(*v);
    }
    auto version = r->optional_uint32("version");
    if (!version) return std::move(version).error();
    o.version = *version;
    if (auto done = r->finish(); !done) return std::move(done).error();
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
            auto r = core::JsonRecord::parse(text, record_kind(name, "approval"));
            if (!r) return std::move(r).error();
            auto at = r->time("at_ms");
            if (!at) return std::move(at).error();
            if (auto done = r->finish(); !done) return std::move(done).error();
            std::string principal = name.substr(approval_prefix.size());
            if (!policy::valid_name(principal)) return malformed(name, "bad principal name");
            approvals.push_back({std::move(principal), core::from_unix_millis(*at)});
        } else if (name.rfind(close_prefix, 0) == 0 || name.rfind(decide_prefix, 0) == 0) {
            // The fold needs only when the claim was made: its other members (decision, by)
            // tell an operator who claimed what and stay unchecked, so no finish() here.
            auto r = core::JsonRecord::parse(text, record_kind(name, "close claim"));
            if (!r) return std::move(r).error();
            auto at = r->time("at_ms");
            if (!at) return std::move(at).error();
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
