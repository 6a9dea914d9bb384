// Approval requests as append-only records on the token, and the fold that gives a request's
// state (docs/adr/0004-shared-state-on-the-token.md). Names are relative to the store's root
// ("licentra/request/" on the token):
//   <id>                              the request as opened (policy canonical JSON)
//   <id>/approval/<principal>         one approval: {"at_ms"}
//   <id>/close/<nonce>/<principal>    a claim to close it: {"decision","by","at_ms"}
//   <id>/decide/<nonce>/<principal>   the second claim round among first-round winners
//   <id>/outcome/<nonce>              how the winning claim closed it: {"decision","result",
//                                     "principal","by","at_ms"[,"reason","version","kid"]}
// Several daemons write these at the same instant; none is ever rewritten. Exactly one claim
// wins (keys/claim.hpp) and only its writer writes an outcome.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"
#include "policy/approval.hpp"

namespace licentra::service {

using RecordList = std::vector<std::pair<std::string, std::string>>;  // (name, JSON text)

// A closing decision.
enum class Decision { execute, reject, expire };
[[nodiscard]] std::string_view decision_name(Decision d) noexcept;

struct OutcomeRecord {
    Decision decision = Decision::execute;
    policy::RequestState result = policy::RequestState::executed;
    std::string principal;  // who closed it: completing approver, rejecter, or "system"
    std::string by;         // the replica that acted
    std::int64_t at_ms = 0;
    std::optional<std::string> reason;  // failed: the error code
    std::optional<std::uint32_t> version;
    std::optional<std::string> state;
    std::optional<std::string> kid;

    [[nodiscard]] std::string to_json() const;
    [[nodiscard]] static core::Result<OutcomeRecord> from_json(std::string_view text);
};

struct StoredRequest {
    policy::ApprovalRequest request;  // approvals and the winning close applied
    std::optional<OutcomeRecord> outcome;
    std::optional<std::int64_t> closing_since_ms;  // a close claim exists, no outcome yet
};

// Requests past this long in "closing" without an outcome count as failed (the replica that
// won the claim died while executing).
inline constexpr std::chrono::minutes kCloseAbandoned{5};

// True for a 32-hex request id.
[[nodiscard]] bool valid_request_id(std::string_view id) noexcept;

// Folds the records of one request (names relative to the root, all starting with id).
// nullopt if the request object itself is missing (not found); integrity error if malformed.
[[nodiscard]] core::Result<std::optional<StoredRequest>> fold_request(const std::string& id,
                                                                      const RecordList& records,
                                                                      core::TimePoint now);

// Groups a listing of the whole root by request id (names that are not request records, such
// as scheduled-rotation claims, are left out).
[[nodiscard]] std::map<std::string, RecordList> group_by_request(const RecordList& records);

}  // namespace licentra::service
