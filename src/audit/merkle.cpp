#include "audit/merkle.hpp"

#include <bit>
#include <cstring>

#include "crypto/digest.hpp"

namespace licentra::audit {

namespace {

using core::ErrorKind;
using core::make_error;

// The largest power of two strictly smaller than n (n >= 2), RFC 9162 §2.1.1 "k".
std::uint64_t split_point(std::uint64_t n) { return std::bit_floor(n - 1); }

core::Error inclusion_invalid(std::string message) {
    return make_error(ErrorKind::integrity, "audit.inclusion_proof_invalid", std::move(message));
}

core::Error consistency_invalid(std::string message) {
    return make_error(ErrorKind::integrity, "audit.consistency_proof_invalid", std::move(message));
}

}  // namespace

Hash leaf_hash(core::ByteView leaf) {
    crypto::Sha256 h;
    h.update(std::uint8_t{0x00}).update(leaf);
    return h.finish();
}

Hash node_hash(const Hash& left, const Hash& right) {
    crypto::Sha256 h;
    h.update(std::uint8_t{0x01}).update(left).update(right);
    return h.finish();
}

Hash empty_root() { return crypto::sha256({}); }

std::string hash_hex(const Hash& h) { return core::hex_encode(h); }

core::Result<Hash> hash_from_bytes(core::ByteView bytes) {
    if (bytes.size() != 32) {
        return make_error(ErrorKind::usage, "audit.bad_hash", "a hash must be 32 bytes");
    }
    Hash out;
    std::memcpy(out.data(), bytes.data(), out.size());
    return out;
}

core::Result<Hash> hash_from_hex(std::string_view text) {
    auto bytes = core::hex_decode(text);
    if (!bytes)
        return make_error(ErrorKind::usage, "audit.bad_hash", "a hash must be 64 hex digits");
    return hash_from_bytes(*bytes);
}

// ---- CompactRange ----------------------------------------------------------------------------

void CompactRange::append(const Hash& leaf) {
    // Each trailing one bit of the old size is a perfect subtree of the same size as the one
    // being completed: merge them right to left.
    Hash h = leaf;
    for (std::uint64_t n = size_; (n & 1U) != 0; n >>= 1U) {
        h = node_hash(nodes_.back(), h);
        nodes_.pop_back();
    }
    nodes_.push_back(h);
    ++size_;
}

Hash CompactRange::root() const {
    if (nodes_.empty()) return empty_root();
    Hash r = nodes_.back();
    for (std::size_t i = nodes_.size() - 1; i-- > 0;) r = node_hash(nodes_[i], r);
    return r;
}

// ---- MerkleTree ------------------------------------------------------------------------------

void MerkleTree::append(const Hash& leaf) {
    if (levels_.empty()) levels_.emplace_back();
    levels_[0].push_back(leaf);
    for (std::size_t k = 0; levels_[k].size() % 2 == 0; ++k) {
        const auto& level = levels_[k];
        Hash parent = node_hash(level[level.size() - 2], level[level.size() - 1]);
        if (levels_.size() == k + 1) levels_.emplace_back();
        levels_[k + 1].push_back(parent);
    }
}

Hash MerkleTree::subtree(std::uint64_t begin, std::uint64_t end) const {
    const std::uint64_t n = end - begin;
    if (n == 0) return empty_root();
    if (std::has_single_bit(n) && begin % n == 0) {
        const auto k = static_cast<std::size_t>(std::countr_zero(n));
        return levels_[k][begin >> k];
    }
    const std::uint64_t k = split_point(n);
    return node_hash(subtree(begin, begin + k), subtree(begin + k, end));
}

core::Result<Hash> MerkleTree::root(std::uint64_t size) const {
    if (size > this->size()) {
        return make_error(ErrorKind::usage, "audit.size_out_of_range",
                          "tree size " + std::to_string(size) + " exceeds the log size " +
                              std::to_string(this->size()));
    }
    return subtree(0, size);
}

void MerkleTree::path(std::uint64_t m, std::uint64_t begin, std::uint64_t end,
                      std::vector<Hash>& out) const {
    const std::uint64_t n = end - begin;
    if (n <= 1) return;
    const std::uint64_t k = split_point(n);
    // RFC 9162 §2.1.3.1: PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k,
    //                                    PATH(m - k, D[k:n]) : MTH(D[0:k]) for m >= k.
    if (m < k) {
        path(m, begin, begin + k, out);
        out.push_back(subtree(begin + k, end));
    } else {
        path(m - k, begin + k, end, out);
        out.push_back(subtree(begin, begin + k));
    }
}

core::Result<std::vector<Hash>> MerkleTree::inclusion_proof(std::uint64_t index,
                                                            std::uint64_t size) const {
    if (size > this->size() || index >= size) {
        return make_error(ErrorKind::usage, "audit.index_out_of_range",
                          "inclusion proof needs index < size <= " + std::to_string(this->size()));
    }
    std::vector<Hash> out;
    path(index, 0, size, out);
    return out;
}

void MerkleTree::subproof(std::uint64_t m, std::uint64_t begin, std::uint64_t end, bool whole,
                          std::vector<Hash>& out) const {
    const std::uint64_t n = end - begin;
    // RFC 9162 §2.1.4.1: SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}.
    if (m == n) {
        if (!whole) out.push_back(subtree(begin, end));
        return;
    }
    const std::uint64_t k = split_point(n);
    if (m <= k) {
        subproof(m, begin, begin + k, whole, out);
        out.push_back(subtree(begin + k, end));
    } else {
        subproof(m - k, begin + k, end, false, out);
        out.push_back(subtree(begin, begin + k));
    }
}

core::Result<std::vector<Hash>> MerkleTree::consistency_proof(std::uint64_t first,
                                                              std::uint64_t second) const {
    if (first == 0 || first > second || second > size()) {
        return make_error(
            ErrorKind::usage, "audit.size_out_of_range",
            "consistency proof needs 0 < first <= second <= " + std::to_string(size()));
    }
    std::vector<Hash> out;
    subproof(first, 0, second, true, out);
    return out;
}

// ---- verification ----------------------------------------------------------------------------

core::Status verify_inclusion(std::uint64_t index, std::uint64_t tree_size, const Hash& leaf,
                              const std::vector<Hash>& proof, const Hash& root) {
    // RFC 9162 §2.1.3.2, step by step.
    if (index >= tree_size) return inclusion_invalid("leaf index is not below the tree size");
    std::uint64_t fn = index;
    std::uint64_t sn = tree_size - 1;
    Hash r = leaf;
    for (const Hash& p : proof) {
        if (sn == 0) return inclusion_invalid("proof is longer than the tree is deep");
        if ((fn & 1U) != 0 || fn == sn) {
            r = node_hash(p, r);
            if ((fn & 1U) == 0) {
                while ((fn & 1U) == 0 && fn != 0) {
                    fn >>= 1U;
                    sn >>= 1U;
                }
            }
        } else {
            r = node_hash(r, p);
        }
        fn >>= 1U;
        sn >>= 1U;
    }
    if (sn != 0) return inclusion_invalid("proof is shorter than the tree is deep");
    if (r != root) return inclusion_invalid("computed root differs from the expected root");
    return core::ok_status();
}

core::Status verify_consistency(std::uint64_t first, std::uint64_t second, const Hash& first_root,
                                const Hash& second_root, const std::vector<Hash>& proof) {
    // RFC 9162 §2.1.4.2, step by step.
    if (first > second) return consistency_invalid("first tree is larger than the second");
    if (first == second) {
        if (!proof.empty()) return consistency_invalid("proof for equal sizes must be empty");
        if (first_root != second_root) return consistency_invalid("equal sizes, different roots");
        return core::ok_status();
    }
    if (first == 0) {
        // The empty tree is a prefix of every tree; no proof is defined or needed.
        if (!proof.empty() || first_root != empty_root()) {
            return consistency_invalid("the empty tree has a fixed root and an empty proof");
        }
        return core::ok_status();
    }
    // 1. If consistency_path is an empty array, stop and fail the proof verification.
    if (proof.empty()) return consistency_invalid("empty proof");
    // 2. If first is an exact power of 2, then prepend first_hash to the consistency_path.
    std::vector<Hash> path;
    path.reserve(proof.size() + 1);
    if (std::has_single_bit(first)) path.push_back(first_root);
    path.insert(path.end(), proof.begin(), proof.end());
    // 3. Set fn to first - 1 and sn to second - 1.
    std::uint64_t fn = first - 1;
    std::uint64_t sn = second - 1;
    // 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while ((fn & 1U) != 0) {
        fn >>= 1U;
        sn >>= 1U;
    }
    // 5. Set both fr and sr to the first value in the consistency_path array.
    Hash fr = path[0];
    Hash sr = path[0];
    // 6. For each subsequent value c in the consistency_path array:
    for (std::size_t i = 1; i < path.size(); ++i) {
        const Hash& c = path[i];
        if (sn == 0) return consistency_invalid("proof is longer than the tree is deep");
        if ((fn & 1U) != 0 || fn == sn) {
            fr = node_hash(c, fr);
            sr = node_hash(c, sr);
            if ((fn & 1U) == 0) {
                while ((fn & 1U) == 0 && fn != 0) {
                    fn >>= 1U;
                    sn >>= 1U;
                }
            }
        } else {
            sr = node_hash(sr, c);
        }
        fn >>= 1U;
        sn >>= 1U;
    }
    // 7. Compare fr to first_hash, sr to second_hash, and check that sn is 0.
    if (sn != 0) return consistency_invalid("proof is shorter than the tree is deep");
    if (fr != first_root) return consistency_invalid("first root does not match");
    if (sr != second_root) return consistency_invalid("second root does not match");
    return core::ok_status();
}

}  // namespace licentra::audit
