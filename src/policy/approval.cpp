#include "policy/approval.hpp"

#include <algorithm>
#include <cstdint>

#include "core/bytes.hpp"
#include "core/json_record.hpp"
#include "crypto/random.hpp"
#include "policy/engine.hpp"

namespace licentra::policy {

namespace {

constexpr std::string_view kDigestDomain = "licentra-approval-request-v1\n";
constexpr std::size_t kNonceBytes = 16;
constexpr std::size_t kMaxParams = 16;
constexpr std::size_t kMaxParamString = 256;

core::Error usage(std::string code, std::string message) {
    return core::make_error(core::ErrorKind::usage, std::move(code), std::move(message));
}
core::Error conflict(std::string code, std::string message) {
    return core::make_error(core::ErrorKind::conflict, std::move(code), std::move(message));
}
core::Error malformed(std::string message) {
    return core::make_error(core::ErrorKind::integrity, "policy.request_malformed",
                            std::move(message));
}

// Requests and their approval records as JsonRecord reports them: a malformed request.
core::RecordKind record_kind(std::string name) {
    return {std::move(name), core::ErrorKind::integrity, "policy.request_malformed"};
}

// The stored text is at most 64 KiB: every string in it is bounded by that already.
constexpr std::size_t kMaxRequestText = 64 * 1024;

// An approval or a rejection: {"principal", "at_ms"}, the time range-checked before it is
// converted.
core::Result<ApprovalRecord> approval_record(const nlohmann::json& value, const std::string& what) {
    auto r = core::JsonRecord::of(value, record_kind(what));
    if (!r) return std::move(r).error();
    auto principal = r->string("principal", kMaxRequestText);
    if (!principal) return std::move(principal).error();
    auto at = r->time("at_ms");
    if (!at) return std::move(at).error();
    if (auto done = r->finish(); !done) return std::move(done).error();
    return ApprovalRecord{std::move(*principal), core::from_unix_millis(*at)};
}

core::TimePoint to_millis(core::TimePoint t) {
    return core::from_unix_millis(core::unix_millis(t));
}

bool valid_param_name(std::string_view n) {
    if (n.empty() || n.size() > 32) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

core::Status check_params(const nlohmann::json& params) {
    if (!params.is_object()) return usage("policy.request_params", "params must be an object");
    if (params.size() > kMaxParams) {
        return usage("policy.request_params", "at most 16 params are allowed");
    }
    for (auto it = params.begin(); it != params.end(); ++it) {
        if (!valid_param_name(it.key())) {
            return usage("policy.request_params", "param names are 1-32 of [a-z0-9_]");
        }
        const auto& v = it.value();
        const bool ok =
            v.is_boolean() || v.is_number_integer() ||
            (v.is_string() && v.get_ref<const std::string&>().size() <= kMaxParamString);
        if (!ok) {
            return usage(
                "policy.request_params",
                "param \"" + it.key() + "\" must be a boolean, an integer or a short string");
        }
    }
    return core::ok_status();
}

}  // namespace

std::string_view request_state_name(RequestState s) noexcept {
    switch (s) {
        case RequestState::pending:
            return "pending";
        case RequestState::rejected:
            return "rejected";
        case RequestState::executed:
            return "executed";
        case RequestState::expired:
            return "expired";
        case RequestState::failed:
            return "failed";
        default:
            return "unknown";
    }
}

core::Result<ApprovalRequest> ApprovalRequest::open_impl(
    const Engine& engine, Operation op, std::string_view requester, std::string_view key,
    std::optional<std::uint32_t> version, nlohmann::json params, core::TimePoint now) {
    const KeyRules* k = engine.key_rules(key);
    if (k == nullptr) {
        return core::make_error(core::ErrorKind::denied, "policy.unknown_key",
                                "key \"" + std::string(key) + "\" is not in the policy");
    }
    if (requester != kSystemPrincipal) {
        // The grant may come from an older policy snapshot: decide again with this one.
        if (auto st = engine.check(requester, request_action(op), key); !st.ok()) {
            return std::move(st).error();
        }
    }
    if (op == Operation::rotate && version) {
        return usage("policy.request_version", "a rotation request takes no version");
    }
    if (op != Operation::rotate && (!version || *version == 0)) {
        return usage("policy.request_version",
                     std::string(operation_name(op)) + " needs a key version (1 or more)");
    }
    if (params.is_null()) params = nlohmann::json::object();
    if (auto st = check_params(params); !st.ok()) return std::move(st).error();
    auto nonce = crypto::random_bytes(kNonceBytes);
    if (!nonce.ok()) return std::move(nonce).error();

    ApprovalRequest r;
    r.operation_ = op;
    r.key_ = k->name;
    r.version_ = version;
    r.params_ = std::move(params);
    r.requester_ = std::string(requester);
    r.policy_ = engine.sha256();
    r.nonce_ = std::move(nonce).value();
    r.created_ = to_millis(now);
    r.expires_ = r.created_ + k->approval(op).lifetime;
    r.quorum_ = k->approval(op).quorum;
    return r;
}

core::Result<ApprovalRequest> ApprovalRequest::open_scheduled(const Engine& engine,
                                                              std::string_view key,
                                                              core::TimePoint now) {
    const KeyRules* k = engine.key_rules(key);
    if (k == nullptr) {
        return core::make_error(core::ErrorKind::denied, "policy.unknown_key",
                                "key \"" + std::string(key) + "\" is not in the policy");
    }
    if (!k->rotation.period || !k->rotation.requires_approval) {
        return usage("policy.approval_not_required",
                     "scheduled rotation of key \"" + k->name + "\" does not need approvals");
    }
    return open_impl(engine, Operation::rotate, kSystemPrincipal, key, std::nullopt,
                     nlohmann::json::object(), now);
}

core::Status ApprovalRequest::check_open(const Engine& engine, core::TimePoint now) const {
    if (state_ != RequestState::pending) {
        return conflict("policy.request_closed",
                        "request " + id() + " is " + std::string(request_state_name(state_)));
    }
    if (expired(now)) return conflict("policy.request_expired", "request " + id() + " has expired");
    if (policy_ != engine.sha256()) {
        return conflict("policy.request_policy_changed",
                        "request " + id() + " was opened under another policy");
    }
    return core::ok_status();
}

core::Status ApprovalRequest::approve(const Engine& engine, std::string_view principal,
                                      core::TimePoint now,
                                      const crypto::Sha256Digest* expected_digest) {
    if (auto st = check_open(engine, now); !st.ok()) return st;
    if (expected_digest != nullptr && *expected_digest != digest()) {
        return conflict("policy.request_digest_mismatch",
                        "request " + id() + " is not the request that was reviewed");
    }
    if (auto st = engine.check(principal, Action::request_approve, key_); !st.ok()) return st;
    if (principal == requester_) {
        return core::make_error(core::ErrorKind::denied, "policy.requester_cannot_approve",
                                "the requester of " + id() + " cannot approve it");
    }
    const bool repeat =
        std::any_of(approvals_.begin(), approvals_.end(),
                    [&](const ApprovalRecord& a) { return a.principal == principal; });
    if (repeat) {
        return conflict("policy.duplicate_approval",
                        "\"" + std::string(principal) + "\" already approved " + id());
    }
    approvals_.push_back(ApprovalRecord{std::string(principal), to_millis(now)});
    return core::ok_status();
}

core::Status ApprovalRequest::reject(const Engine& engine, std::string_view principal,
                                     core::TimePoint now) {
    if (auto st = check_open(engine, now); !st.ok()) return st;
    if (auto st = engine.check(principal, Action::request_reject, key_); !st.ok()) return st;
    state_ = RequestState::rejected;
    rejection_ = ApprovalRecord{std::string(principal), to_millis(now)};
    return core::ok_status();
}

core::Status ApprovalRequest::mark_executed(
    const core::Grant<core::action::KeyLifecycleExecute>& grant) {
    if (state_ != RequestState::pending) {
        return conflict("policy.request_closed",
                        "request " + id() + " is " + std::string(request_state_name(state_)));
    }
    if (grant.key() != key_) {
        return core::make_error(core::ErrorKind::denied, "policy.key_out_of_scope",
                                "the grant is for another key");
    }
    state_ = RequestState::executed;
    return core::ok_status();
}

void ApprovalRequest::add_recorded_approval(const ApprovalRecord& a) {
    if (a.principal == requester_ || a.at >= expires_) return;
    const bool repeat =
        std::any_of(approvals_.begin(), approvals_.end(),
                    [&](const ApprovalRecord& b) { return b.principal == a.principal; });
    if (repeat) return;
    approvals_.push_back(ApprovalRecord{a.principal, to_millis(a.at)});
    std::sort(approvals_.begin(), approvals_.end(),
              [](const ApprovalRecord& x, const ApprovalRecord& y) {
                  return x.at != y.at ? x.at < y.at : x.principal < y.principal;
              });
}

void ApprovalRequest::close_as(RequestState state, ApprovalRecord by) {
    if (state == RequestState::pending) return;
    state_ = state;
    if (state == RequestState::rejected) rejection_ = std::move(by);
}

std::optional<std::string> ApprovalRequest::quorum_completed_by() const {
    if (quorum_ == 0) return requester_;
    if (approvals_.size() < quorum_) return std::nullopt;
    return approvals_[quorum_ - 1].principal;
}

bool ApprovalRequest::executable(core::TimePoint now) const noexcept {
    return state_ == RequestState::pending && !expired(now) && approvals_.size() >= quorum_;
}

nlohmann::json ApprovalRequest::digest_fields() const {
    nlohmann::json j = nlohmann::json::object();
    j["operation"] = std::string(operation_name(operation_));
    j["key"] = key_;
    j["version"] = version_ ? nlohmann::json(*version_) : nlohmann::json(nullptr);
    j["params"] = params_;
    j["requester"] = requester_;
    j["policy_sha256"] = core::hex_encode(policy_);
    j["nonce"] = core::hex_encode(nonce_);
    j["created_ms"] = core::unix_millis(created_);
    j["expires_ms"] = core::unix_millis(expires_);
    j["quorum"] = quorum_;
    return j;
}

crypto::Sha256Digest ApprovalRequest::digest() const {
    // nlohmann::json objects are std::map-ordered and dump() without indent emits no
    // whitespace: for objects of ASCII keys, strings, integers and null this is the RFC 8785
    // (JCS) canonical form.
    const std::string canonical =
        std::string(kDigestDomain) +
        digest_fields().dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
    return crypto::sha256(core::as_bytes(canonical));
}

std::string ApprovalRequest::id() const {
    const crypto::Sha256Digest d = digest();
    return core::hex_encode(core::ByteView(d.data(), 16));
}

std::string ApprovalRequest::to_json() const {
    nlohmann::json j = digest_fields();
    j["id"] = id();
    j["state"] = std::string(request_state_name(state_));
    nlohmann::json approvals = nlohmann::json::array();
    for (const ApprovalRecord& a : approvals_) {
        approvals.push_back({{"principal", a.principal}, {"at_ms", core::unix_millis(a.at)}});
    }
    j["approvals"] = std::move(approvals);
    j["rejection"] = rejection_ ? nlohmann::json{{"principal", rejection_->principal},
                                                 {"at_ms", core::unix_millis(rejection_->at)}}
                                : nlohmann::json(nullptr);
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

core::Result<ApprovalRequest> ApprovalRequest::from_json(std::string_view text) {
    if (text.size() > kMaxRequestText) return malformed("request JSON is too large");
    auto j = core::JsonRecord::parse(text, record_kind("request"));
    if (!j) return std::move(j).error();
    ApprovalRequest r;
    auto op = j->one_of("operation", operation_from_name);
    if (!op) return std::move(op).error();
    r.operation_ = *op;
    auto key = j->string("key", kMaxRequestText);
    if (!key) return std::move(key).error();
    r.key_ = std::move(*key);
    auto version = j->nullable_uint32("version");
    if (!version) return std::move(version).error();
    if (*version == 0u) return j->error("version", "must be a positive 32-bit integer");
    r.version_ = *version;
    auto params = j->value("params");
    if (!params) return std::move(params).error();
    if (auto st = check_params(*params); !st.ok()) return malformed(st.error().message);
    r.params_ = std::move(*params);
    auto requester = j->string("requester", kMaxRequestText);
    if (!requester) return std::move(requester).error();
    r.requester_ = std::move(*requester);
    auto policy = j->hex("policy_sha256", r.policy_.size());
    if (!policy) return std::move(policy).error();
    std::copy(policy->begin(), policy->end(), r.policy_.begin());
    auto nonce = j->hex("nonce", kNonceBytes);
    if (!nonce) return std::move(nonce).error();
    r.nonce_ = std::move(*nonce);
    auto created = j->time("created_ms");
    if (!created) return std::move(created).error();
    auto expires = j->time("expires_ms");
    if (!expires) return std::move(expires).error();
    r.created_ = core::from_unix_millis(*created);
    r.expires_ = core::from_unix_millis(*expires);
    if (r.expires_ <= r.created_) return malformed("expires before it was created");
    auto quorum = j->uint32("quorum");
    if (!quorum) return std::move(quorum).error();
    if (*quorum > 64) return j->error("quorum", "must be an integer from 0 to 64");
    r.quorum_ = *quorum;
    auto state = j->one_of("state", [](std::string_view name) -> std::optional<RequestState> {
        for (RequestState s :
             {RequestState::pending, RequestState::rejected, RequestState::executed}) {
            if (name == request_state_name(s)) return s;
        }
        return std::nullopt;
    });
    if (!state) return std::move(state).error();
    r.state_ = *state;
    auto approvals = j->value("approvals");
    if (!approvals) return std::move(approvals).error();
    if (!approvals->is_array()) return j->error("approvals", "must be a list");
    for (const auto& a : *approvals) {
        auto rec = approval_record(a, "approval");
        if (!rec) return std::move(rec).error();
        r.approvals_.push_back(std::move(rec).value());
    }
    auto rejection = j->value("rejection");
    if (!rejection) return std::move(rejection).error();
    if (!rejection->is_null()) {
        auto rec = approval_record(*rejection, "rejection");
        if (!rec) return std::move(rec).error();
        r.rejection_ = std::move(rec).value();
    }
    if ((r.state_ == RequestState::rejected) != r.rejection_.has_value()) {
        return malformed("rejection record does not match the state");
    }
    auto id = j->string("id", kMaxRequestText);
    if (!id) return std::move(id).error();
    if (auto done = j->finish(); !done) return std::move(done).error();
    if (*id != r.id()) {
        return core::make_error(core::ErrorKind::integrity, "policy.request_digest_mismatch",
                                "the stored id does not match the request's digest");
    }
    return r;
}

}  // namespace licentra::policy
