#include "audit/proof_json.hpp"

namespace licentra::audit {

namespace {

nlohmann::json hashes(const std::vector<Hash>& proof) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& h : proof) out.push_back(hash_base64(h));
    return out;
}

}  // namespace

std::string hash_base64(const Hash& h) { return core::base64_encode(h); }

nlohmann::json inclusion_proof_json(std::uint64_t index, std::uint64_t tree_size, const Hash& leaf,
                                    const Hash& root, const std::vector<Hash>& proof) {
    return {{"index", index},
            {"tree_size", tree_size},
            {"leaf_hash", hash_base64(leaf)},
            {"root_hash", hash_base64(root)},
            {"proof", hashes(proof)}};
}

nlohmann::json consistency_proof_json(std::uint64_t first, std::uint64_t second,
                                      const Hash& first_root, const Hash& second_root,
                                      const std::vector<Hash>& proof) {
    return {{"first", first},
            {"second", second},
            {"first_root_hash", hash_base64(first_root)},
            {"second_root_hash", hash_base64(second_root)},
            {"proof", hashes(proof)}};
}

}  // namespace licentra::audit
