#include "policy/model.hpp"

#include <algorithm>

#include "core/names.hpp"

namespace licentra::policy {

namespace {
constexpr std::array<std::string_view, kActionCount> kActionNames = {
    core::action::TokenSign::name,        core::action::KeysRead::name,
    core::action::JwksRead::name,         core::action::KeyRotateRequest::name,
    core::action::KeyRetireRequest::name, core::action::KeyDestroyRequest::name,
    core::action::RequestApprove::name,   core::action::RequestReject::name,
    core::action::AuditRead::name,
};
constexpr std::array<std::string_view, 3> kOperationNames = {"rotate", "retire", "destroy"};
}  // namespace

std::string_view action_name(Action a) noexcept {
    const auto i = static_cast<std::size_t>(a);
    return i < kActionNames.size() ? kActionNames[i] : std::string_view("unknown");
}

std::optional<Action> action_from_name(std::string_view name) noexcept {
    for (std::size_t i = 0; i < kActionNames.size(); ++i) {
        if (kActionNames[i] == name) return static_cast<Action>(i);
    }
    return std::nullopt;
}

bool action_is_key_scoped(Action a) noexcept {
    switch (a) {
        case Action::jwks_read:
        case Action::audit_read:
            return false;
        case Action::token_sign:
        case Action::keys_read:
        case Action::key_rotate_request:
        case Action::key_retire_request:
        case Action::key_destroy_request:
        case Action::request_approve:
        case Action::request_reject:
            return true;
        default:
            return true;
    }
}

std::string_view operation_name(Operation op) noexcept {
    const auto i = static_cast<std::size_t>(op);
    return i < kOperationNames.size() ? kOperationNames[i] : std::string_view("unknown");
}

std::optional<Operation> operation_from_name(std::string_view name) noexcept {
    for (std::size_t i = 0; i < kOperationNames.size(); ++i) {
        if (kOperationNames[i] == name) return static_cast<Operation>(i);
    }
    return std::nullopt;
}

Action request_action(Operation op) noexcept {
    switch (op) {
        case Operation::rotate:
            return Action::key_rotate_request;
        case Operation::retire:
            return Action::key_retire_request;
        case Operation::destroy:
            return Action::key_destroy_request;
        default:
            return Action::key_destroy_request;
    }
}

std::string_view value_type_name(ValueType t) noexcept {
    switch (t) {
        case ValueType::string:
            return "string";
        case ValueType::integer:
            return "integer";
        case ValueType::boolean:
            return "boolean";
        case ValueType::string_list:
            return "string_list";
        default:
            return "unknown";
    }
}

const std::vector<std::string>& builtin_forbidden_claims() {
    // Personal data (OpenID Connect Core §5.1 standard claims that identify a person, plus
    // network and device identifiers). Sorted; compared case-insensitively.
    static const std::vector<std::string> kList = {
        "address",        "birthdate",   "email",
        "email_address",  "family_name", "first_name",
        "gender",         "given_name",  "ip",
        "ip_address",     "last_name",   "mac",
        "mac_address",    "middle_name", "name",
        "nickname",       "phone",       "phone_number",
        "picture",        "postal_code", "preferred_username",
        "street_address", "username",    "zoneinfo",
    };
    return kList;
}

bool valid_name(std::string_view n) noexcept { return core::is_valid_name(n); }

}  // namespace licentra::policy
