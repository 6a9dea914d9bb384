#include "policy/approval.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "core/bytes.hpp"
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

// A time stored in a request record: an integer, range-checked by core's one record-time check
// before it is converted or compared (a huge value would overflow Clock::duration).
core::Result<core::TimePoint> record_time(const nlohmann::json& v, const std::string& field) {
    if (!v.is_number_integer()) return malformed(field + " must be an integer");
    if (v.is_number_unsigned() &&
        v.get<std::uint64_t>() > std::uint64_t{std::numeric_limits<std::int64_t>::max()}) {
        return malformed(field + ": time " + std::to_string(v.get<std::uint64_t>()) +
                         " ms since the epoch is out of range");
    }
    auto t = core::from_unix_millis_checked(v.get<std::int64_t>());
    if (!t) return malformed(field + ": " + t.error().message);
    return t;
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
    if (text.size() > 64 * 1024) return malformed("request JSON is too large");
    try {
        const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return malformed("request is not a JSON object");
        static const std::vector<std::string> kFields = {
            "approvals", "created_ms", "expires_ms",    "id",     "key",       "nonce",
            "operation", "params",     "policy_sha256", "quorum", "rejection", "requester",
            "state",     "version"};
        if (j.size() != kFields.size()) return malformed("request has missing or extra fields");
        for (const std::string& f : kFields) {
            if (!j.contains(f)) return malformed("request field \"" + f + "\" is missing");
        }
        ApprovalRequest r;
        auto op = operation_from_name(j.at("operation").get<std::string>());
        if (!op) return malformed("unknown operation");
        r.operation_ = *op;
        r.key_ = j.at("key").get<std::string>();
        const auto& v = j.at("version");
        if (!v.is_null()) {
            if (!v.is_number_unsigned() || v.get<std::uint64_t>() == 0 ||
                v.get<std::uint64_t>() > UINT32_MAX) {
                return malformed("version must be a positive 32-bit integer");
            }
            r.version_ = static_cast<std::uint32_t>(v.get<std::uint64_t>());
        }
        if (auto st = check_params(j.at("params")); !st.ok()) return malformed(st.error().message);
        r.params_ = j.at("params");
        r.requester_ = j.at("requester").get<std::string>();
        auto policy = core::hex_decode(j.at("policy_sha256").get<std::string>());
        if (!policy.ok() || policy->size() != 32) return malformed("bad policy_sha256");
        std::copy(policy->begin(), policy->end(), r.policy_.begin());
        auto nonce = core::hex_decode(j.at("nonce").get<std::string>());
        if (!nonce.ok() || nonce->size() != kNonceBytes) return malformed("bad nonce");
        r.nonce_ = std::move(nonce).value();
        auto created = record_time(j.at("created_ms"), "created_ms");
        if (!created) return created.error();
        auto expires = record_time(j.at("expires_ms"), "expires_ms");
        if (!expires) return expires.error();
        r.created_ = *created;
        r.expires_ = *expires;
        if (r.expires_ <= r.created_) return malformed("expires before it was created");
        if (!j.at("quorum").is_number_unsigned() || j.at("quorum").get<std::uint64_t>() > 64) {
            return malformed("quorum must be an integer from 0 to 64");
        }
        r.quorum_ = static_cast<std::uint32_t>(j.at("quorum").get<std::uint64_t>());
        const std::string state = j.at("state").get<std::string>();
        if (state == "pending") {
            r.state_ = RequestState::pending;
        } else if (state == "rejected") {
            r.state_ = RequestState::rejected;
        } else if (state == "executed") {
            r.state_ = RequestState::executed;
        } else {
            return malformed("unknown state");
        }
        auto record = [](const nlohmann::json& a,
                         const std::string& what) -> core::Result<ApprovalRecord> {
            if (!a.is_object() || a.size() != 2 || !a.contains("principal") ||
                !a.contains("at_ms") || !a.at("principal").is_string()) {
                return malformed("bad " + what + " record");
            }
            auto at = record_time(a.at("at_ms"), what + " at_ms");
            if (!at) return at.error();
            return ApprovalRecord{a.at("principal").get<std::string>(), *at};
        };
        if (!j.at("approvals").is_array()) return malformed("approvals must be a list");
        for (const auto& a : j.at("approvals")) {
            auto rec = record(a, "approval");
            if (!rec) return rec.error();
            r.approvals_.push_back(std::move(rec).value());
        }
        if (!j.at("rejection").is_null()) {
            auto rec = record(j.at("rejection"), "rejection");
            if (!rec) return rec.error();
            r.rejection_ = std::move(rec).value();
        }
        if ((r.state_ == RequestState::rejected) != r.rejection_.has_value()) {
            return malformed("rejection record does not match the state");
        }
        if (j.at("id").get<std::string>() != r.id()) {
            return core::make_error(core::ErrorKind::integrity, "policy.request_digest_mismatch",
                                    "the stored id does not match the request's digest");
        }
        return r;
    } catch (const std::exception& e) {
        return malformed(std::string("request JSON has a wrong type: ") + e.what());
    }
}

}  // namespace licentra::policy
