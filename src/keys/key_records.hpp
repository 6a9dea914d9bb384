// Key-version records on the token and the fold that turns them into key state
// (docs/adr/0004-shared-state-on-the-token.md). Pure logic: no HSM access.
//
// Every record is a CKO_DATA object written once and never rewritten, under the version's
// label "licentra/<name>/v<N>":
//   .../claim/<nonce>        a daemon claims the version number before generating it
//   .../created/<ckaid-hex>  the version exists: the key pair with that CKA_ID, its algorithm,
//                            when it activates, how long its predecessor stays published
//   .../retired/<nonce>      an officer retired it (at, verify-until)
//   .../destroyed/<nonce>    its private key object was destroyed
//   .../state                a record of an older release (rewritten in place); read only
// The state at a time `now` is a function of these records alone, so every daemon that has
// read the same records computes the same state:
//   - A version became active at activate_at if it was neither retired nor destroyed before.
//   - A version that became active is superseded (retired) at the activation time of the next
//     higher version that became active; it stays published until that time plus the
//     successor's supersede_verify_ms.
//   - Several key pairs for one version (replicas that raced, or an older release): the one
//     named by the lowest CKA_ID among created records wins; others are orphans.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "crypto/algorithm.hpp"
#include "hsm/hsm.hpp"
#include "keys/key_manager.hpp"

namespace licentra::keys {

struct CreatedRecord {
    crypto::Algorithm algorithm = crypto::Algorithm::EdDSA;
    std::int64_t created_ms = 0;
    std::int64_t activate_at_ms = 0;
    std::int64_t supersede_verify_ms = 0;  // predecessor published this long after activation
    std::string by;                        // replica (audit origin) that generated it
    std::string request;                   // request id that ordered it ("" if none)

    [[nodiscard]] std::string to_json() const;
    [[nodiscard]] static core::Result<CreatedRecord> from_json(core::ByteView json);
};

// An officer's retirement or a destruction: when, and (retirement) published until when.
struct EventRecord {
    std::int64_t at_ms = 0;
    std::optional<std::int64_t> verify_until_ms;  // retired only
    std::string by;

    [[nodiscard]] std::string to_json() const;
    [[nodiscard]] static core::Result<EventRecord> from_json(core::ByteView json, bool retired);
};

// One version after the fold.
struct FoldedVersion {
    std::string name;
    std::string label;   // "licentra/<name>/v<N>"
    std::string id_hex;  // CKA_ID of the winning key pair ("" if unknown: older release)
    VersionRecord record;
};

struct Fold {
    std::map<std::string, std::vector<FoldedVersion>, std::less<>> keys;  // sorted by version
    // Highest version number seen per key in any record, claim or key pair: the next rotation
    // takes the number after it.
    std::map<std::string, unsigned, std::less<>> highest;
    // Problems the fold resolved by rule or set aside, each with what an operator should do.
    std::vector<std::string> warnings;
};

// Record labels.
[[nodiscard]] std::string version_prefix(std::string_view key_label);  // "<label>/"
[[nodiscard]] std::string claim_prefix(std::string_view key_label);    // "<label>/claim/"
[[nodiscard]] std::string created_label(std::string_view key_label, std::string_view id_hex);
[[nodiscard]] std::string retired_prefix(std::string_view key_label);
[[nodiscard]] std::string destroyed_prefix(std::string_view key_label);

// data: every CKO_DATA object under "licentra/" (label, value); pairs: every key pair.
[[nodiscard]] Fold fold_key_records(const std::vector<std::pair<std::string, core::Bytes>>& data,
                                    const std::vector<hsm::KeyInfo>& pairs, std::int64_t now_ms);

// The error a refresh reports when an active version's key pair (label) cannot be loaded: a
// refusal of the pair itself (attributes, type, CKA_ID, not found) becomes the token fault
// keys.key_unreadable (hsm_unavailable, message keeps the cause); device faults stay as they are.
[[nodiscard]] core::Error unreadable_version(const std::string& label, const core::Error& why);

}  // namespace licentra::keys
