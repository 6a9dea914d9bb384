// RFC 9162 Merkle tree hashing, the incremental frontier (compact range) that keeps the root of
// an append-only log without rereading it, an in-memory tree of perfect subtree hashes that
// serves proofs, and the proof verification algorithms.
//
// RFC 9162 §2.1.1: MTH({}) = SHA-256(), MTH({d0}) = SHA-256(0x00 || d0),
// MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])) with k the largest power of two < n.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace licentra::audit {

using Hash = std::array<std::uint8_t, 32>;

// SHA-256(0x00 || leaf).
[[nodiscard]] Hash leaf_hash(core::ByteView leaf);
// SHA-256(0x01 || left || right).
[[nodiscard]] Hash node_hash(const Hash& left, const Hash& right);
// SHA-256() — the root of the empty tree.
[[nodiscard]] Hash empty_root();

[[nodiscard]] std::string hash_hex(const Hash& h);
[[nodiscard]] core::Result<Hash> hash_from_hex(std::string_view text);
[[nodiscard]] core::Result<Hash> hash_from_bytes(core::ByteView bytes);

// The frontier of an append-only tree: the roots of the perfect subtrees along its right edge
// (at most 64 hashes). Appending a leaf costs amortized O(1) hashes; root() costs O(log n).
// Not thread-safe.
class CompactRange {
  public:
    void append(const Hash& leaf);
    [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
    [[nodiscard]] Hash root() const;

  private:
    std::uint64_t size_ = 0;
    // nodes_[i] is the root of a perfect subtree; sizes strictly decrease left to right and
    // match the set bits of size_ from the most significant down.
    std::vector<Hash> nodes_;
};

// Every leaf hash plus the hash of every complete, aligned perfect subtree (about 2 * 32 bytes
// per leaf). Serves roots of any prefix and RFC 9162 proofs in O(log^2 n) hashes without
// touching the log files. Not thread-safe.
class MerkleTree {
  public:
    void append(const Hash& leaf);
    [[nodiscard]] std::uint64_t size() const noexcept {
        return levels_.empty() ? 0 : levels_[0].size();
    }
    [[nodiscard]] const Hash& leaf(std::uint64_t index) const { return levels_[0][index]; }

    // MTH(D[0:size]). Error (usage) if size > this->size().
    [[nodiscard]] core::Result<Hash> root(std::uint64_t size) const;
    // RFC 9162 §2.1.3.1 PATH(index, D[0:size]). Error (usage) unless index < size <= size().
    [[nodiscard]] core::Result<std::vector<Hash>> inclusion_proof(std::uint64_t index,
                                                                  std::uint64_t size) const;
    // RFC 9162 §2.1.4.1 PROOF(first, D[0:second]). Error (usage) unless
    // 0 < first <= second <= size() (first == second gives an empty proof).
    [[nodiscard]] core::Result<std::vector<Hash>> consistency_proof(std::uint64_t first,
                                                                    std::uint64_t second) const;

  private:
    Hash subtree(std::uint64_t begin, std::uint64_t end) const;
    void path(std::uint64_t m, std::uint64_t begin, std::uint64_t end,
              std::vector<Hash>& out) const;
    void subproof(std::uint64_t m, std::uint64_t begin, std::uint64_t end, bool whole,
                  std::vector<Hash>& out) const;

    std::vector<std::vector<Hash>> levels_;  // levels_[k][i] = MTH(D[i*2^k : (i+1)*2^k])
};

// RFC 9162 §2.1.3.2: verifies that leaf (a leaf hash) is at index in the tree of tree_size with
// root. Returns integrity error "audit.inclusion_proof_invalid" when it does not.
[[nodiscard]] core::Status verify_inclusion(std::uint64_t index, std::uint64_t tree_size,
                                            const Hash& leaf, const std::vector<Hash>& proof,
                                            const Hash& root);

// RFC 9162 §2.1.4.2: verifies that the tree (first, first_root) is a prefix of
// (second, second_root). Returns integrity error "audit.consistency_proof_invalid".
[[nodiscard]] core::Status verify_consistency(std::uint64_t first, std::uint64_t second,
                                              const Hash& first_root, const Hash& second_root,
                                              const std::vector<Hash>& proof);

}  // namespace licentra::audit
