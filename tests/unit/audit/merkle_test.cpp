// RFC 6962 / RFC 9162 Merkle tree: the published CT reference vectors (loaded from
// test-vectors/rfc6962-merkle.json), and generated proofs checked against an independent
// recursive definition for every size up to 70.
#include "audit/merkle.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "crypto/digest.hpp"
#include "support/test_support.hpp"

namespace licentra::audit {
namespace {

using nlohmann::json;

json load_vectors() {
    return json::parse(test::read_file(test::test_vectors_dir() / "rfc6962-merkle.json"));
}

Hash hx(const json& v) { return *hash_from_hex(v.get<std::string>()); }

std::vector<Hash> hashes(const json& arr) {
    std::vector<Hash> out;
    for (const auto& v : arr) out.push_back(hx(v));
    return out;
}

MerkleTree vector_tree(const json& vectors) {
    MerkleTree tree;
    for (const auto& leaf : vectors["leaf_inputs_hex"]) {
        tree.append(leaf_hash(*core::hex_decode(leaf.get<std::string>())));
    }
    return tree;
}

// RFC 9162 §2.1.1 written as the definition, independent of MerkleTree's caching.
Hash mth(const std::vector<Hash>& leaves, std::size_t begin, std::size_t end) {
    const std::size_t n = end - begin;
    if (n == 0) return empty_root();
    if (n == 1) return leaves[begin];
    std::size_t k = 1;
    while (k * 2 < n) k *= 2;
    return node_hash(mth(leaves, begin, begin + k), mth(leaves, begin + k, end));
}

TEST(Merkle, RootsMatchTheCertificateTransparencyVectors) {
    const json v = load_vectors();
    const MerkleTree tree = vector_tree(v);
    CompactRange range;
    const auto& roots = v["roots_by_size"];
    ASSERT_EQ(roots.size(), 9u);
    EXPECT_EQ(*tree.root(0), hx(roots[0]));
    EXPECT_EQ(range.root(), hx(roots[0]));
    for (std::uint64_t n = 1; n < roots.size(); ++n) {
        range.append(tree.leaf(n - 1));
        EXPECT_EQ(*tree.root(n), hx(roots[n])) << "size " << n;
        EXPECT_EQ(range.root(), hx(roots[n])) << "compact range at size " << n;
    }
}

TEST(Merkle, InclusionProofsMatchTheVectorsAndVerify) {
    const json v = load_vectors();
    const MerkleTree tree = vector_tree(v);
    ASSERT_FALSE(v["inclusion"].empty());
    for (const auto& c : v["inclusion"]) {
        const auto index = c["index"].get<std::uint64_t>();
        const auto size = c["size"].get<std::uint64_t>();
        const auto expected = hashes(c["proof"]);
        auto proof = tree.inclusion_proof(index, size);
        ASSERT_TRUE(proof.ok());
        EXPECT_EQ(*proof, expected) << index << "/" << size;
        EXPECT_EQ(tree.leaf(index), hx(c["leaf_hash"]));
        EXPECT_TRUE(
            verify_inclusion(index, size, hx(c["leaf_hash"]), expected, hx(c["root"])).ok());
        // Any change to the proof, the index or the root must fail.
        if (!expected.empty()) {
            auto bad = expected;
            bad[0][0] ^= 1;
            EXPECT_FALSE(
                verify_inclusion(index, size, hx(c["leaf_hash"]), bad, hx(c["root"])).ok());
            auto shorter = expected;
            shorter.pop_back();
            EXPECT_FALSE(
                verify_inclusion(index, size, hx(c["leaf_hash"]), shorter, hx(c["root"])).ok());
        }
        auto longer = expected;
        longer.push_back(hx(c["root"]));
        EXPECT_FALSE(verify_inclusion(index, size, hx(c["leaf_hash"]), longer, hx(c["root"])).ok());
        EXPECT_FALSE(
            verify_inclusion(size, size, hx(c["leaf_hash"]), expected, hx(c["root"])).ok());
    }
}

TEST(Merkle, ConsistencyProofsMatchTheVectorsAndVerify) {
    const json v = load_vectors();
    const MerkleTree tree = vector_tree(v);
    ASSERT_FALSE(v["consistency"].empty());
    for (const auto& c : v["consistency"]) {
        const auto first = c["first"].get<std::uint64_t>();
        const auto second = c["second"].get<std::uint64_t>();
        const auto expected = hashes(c["proof"]);
        auto proof = tree.consistency_proof(first, second);
        ASSERT_TRUE(proof.ok());
        EXPECT_EQ(*proof, expected) << first << "->" << second;
        const Hash r1 = hx(c["first_root"]);
        const Hash r2 = hx(c["second_root"]);
        EXPECT_TRUE(verify_consistency(first, second, r1, r2, expected).ok());
        if (first != second) {
            Hash wrong = r1;
            wrong[5] ^= 0x80;
            EXPECT_FALSE(verify_consistency(first, second, wrong, r2, expected).ok());
            EXPECT_FALSE(verify_consistency(first, second, r1, wrong, expected).ok());
            auto bad = expected;
            bad.back()[0] ^= 1;
            EXPECT_FALSE(verify_consistency(first, second, r1, r2, bad).ok());
        }
    }
}

TEST(Merkle, GeneratedProofsVerifyForEverySizeUpTo70) {
    std::vector<Hash> leaves;
    MerkleTree tree;
    CompactRange range;
    for (int i = 0; i < 70; ++i) {
        const std::string data = "leaf-" + std::to_string(i);
        leaves.push_back(leaf_hash(core::as_bytes(data)));
        tree.append(leaves.back());
        range.append(leaves.back());
        ASSERT_EQ(range.root(), mth(leaves, 0, leaves.size()));
    }
    for (std::uint64_t n = 1; n <= 70; ++n) {
        const Hash root = mth(leaves, 0, n);
        ASSERT_EQ(*tree.root(n), root);
        for (std::uint64_t i = 0; i < n; ++i) {
            auto p = tree.inclusion_proof(i, n);
            ASSERT_TRUE(p.ok());
            ASSERT_TRUE(verify_inclusion(i, n, leaves[i], *p, root).ok()) << i << "/" << n;
            ASSERT_FALSE(verify_inclusion(i, n, leaves[(i + 1) % n], *p, root).ok() && n > 1);
        }
        for (std::uint64_t m = 1; m <= n; ++m) {
            auto p = tree.consistency_proof(m, n);
            ASSERT_TRUE(p.ok());
            ASSERT_TRUE(verify_consistency(m, n, mth(leaves, 0, m), root, *p).ok())
                << m << "->" << n;
        }
    }
}

TEST(Merkle, ProofRequestsOutsideTheTreeAreUsageErrors) {
    MerkleTree tree;
    for (int i = 0; i < 5; ++i) tree.append(leaf_hash(core::as_bytes(std::to_string(i))));
    EXPECT_EQ(tree.inclusion_proof(5, 5).error().kind, core::ErrorKind::usage);
    EXPECT_EQ(tree.inclusion_proof(0, 6).error().kind, core::ErrorKind::usage);
    EXPECT_EQ(tree.consistency_proof(0, 3).error().kind, core::ErrorKind::usage);
    EXPECT_EQ(tree.consistency_proof(4, 3).error().kind, core::ErrorKind::usage);
    EXPECT_EQ(tree.root(6).error().kind, core::ErrorKind::usage);
}

}  // namespace
}  // namespace licentra::audit
