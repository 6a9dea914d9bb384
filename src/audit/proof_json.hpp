// The one JSON shape of the log's Merkle proofs, written by the API (GET /v1/audit/proofs/…)
// and by `licentra audit prove-inclusion|prove-consistency` alike (docs/audit.md#proofs).
// Hashes are standard base64 (RFC 4648 §4), as in C2SP checkpoints and tlog-proof.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "audit/merkle.hpp"

namespace licentra::audit {

[[nodiscard]] std::string hash_base64(const Hash& h);

// {"index", "tree_size", "leaf_hash", "root_hash", "proof": [...]} (RFC 9162 §2.1.3).
[[nodiscard]] nlohmann::json inclusion_proof_json(std::uint64_t index, std::uint64_t tree_size,
                                                  const Hash& leaf, const Hash& root,
                                                  const std::vector<Hash>& proof);

// {"first", "second", "first_root_hash", "second_root_hash", "proof": [...]} (RFC 9162 §2.1.4).
[[nodiscard]] nlohmann::json consistency_proof_json(std::uint64_t first, std::uint64_t second,
                                                    const Hash& first_root, const Hash& second_root,
                                                    const std::vector<Hash>& proof);

}  // namespace licentra::audit
