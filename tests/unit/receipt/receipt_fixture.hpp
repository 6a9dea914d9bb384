// A small signed log in memory for receipt tests: canonical entries, their Merkle tree, a
// checkpoint signed by an in-process key, and receipts for any entry, made as the daemon makes
// them (audit::format_receipt of the entry line, its RFC 9162 proof and the signed note).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "audit/checkpoint.hpp"
#include "audit/entry.hpp"
#include "audit/merkle.hpp"
#include "audit/receipt.hpp"
#include "core/bytes.hpp"
#include "core/time.hpp"
#include "crypto/digest.hpp"
#include "unit/token/test_signer.hpp"

namespace licentra::test {

inline std::string token_hash(const std::string& token) {
    return core::hex_encode(crypto::sha256(core::as_bytes(token)));
}

class SignedLog {
  public:
    explicit SignedLog(std::string origin = "test.example/audit/node-1",
                       crypto::Algorithm alg = crypto::Algorithm::EdDSA)
        : origin_(std::move(origin)), signer_(OpensslSigner::generate(alg)) {
        auto cs = audit::CheckpointSigner::create(origin_, *signer_);
        checkpoints_ = std::make_unique<audit::CheckpointSigner>(std::move(cs).value());
    }

    // Appends an allowed token.sign entry for token; returns its index.
    std::uint64_t add_token(const std::string& token, const std::string& key = "product-a") {
        audit::Entry e;
        e.principal = "license-server";
        e.action = "token.sign";
        e.result = audit::Outcome::allowed;
        e.key = key;
        e.kid = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
        e.version = 1;
        e.request_id = "9f1c0a4e5b7d4c2a8e3f6b1d0c9a8e7f";
        e.token_sha256 = token_hash(token);
        e.claims = std::vector<std::string>{"exp", "sub"};
        return add(std::move(e));
    }
    std::uint64_t add(audit::Entry e) {
        e.seq = lines_.size();
        e.time = core::from_unix_millis(1'700'000'000'000 + static_cast<std::int64_t>(e.seq));
        lines_.push_back(audit::serialize_entry(e).value());
        tree_.append(audit::leaf_hash(core::as_bytes(lines_.back())));
        return e.seq;
    }
    std::uint64_t add_other(const std::string& action) {
        audit::Entry e;
        e.principal = "officer-a";
        e.action = action;
        e.result = audit::Outcome::allowed;
        e.key = "product-a";
        return add(std::move(e));
    }

    // The signed note of the whole tree.
    std::string note() const {
        return checkpoints_->sign({origin_, tree_.size(), tree_.root(tree_.size()).value()})
            .value();
    }
    audit::Receipt receipt_parts(std::uint64_t index) const {
        audit::Receipt r;
        r.extra = lines_.at(index);
        r.index = index;
        r.proof = tree_.inclusion_proof(index, tree_.size()).value();
        r.checkpoint = note();
        return r;
    }
    std::string receipt(std::uint64_t index) const {
        return audit::format_receipt(receipt_parts(index));
    }
    std::string verifier_key() const { return checkpoints_->verifier().to_string(); }
    const audit::NoteVerifier& verifier() const { return checkpoints_->verifier(); }
    const std::string& origin() const { return origin_; }
    const std::string& line(std::uint64_t i) const { return lines_.at(i); }

  private:
    std::string origin_;
    std::unique_ptr<OpensslSigner> signer_;
    std::unique_ptr<audit::CheckpointSigner> checkpoints_;
    std::vector<std::string> lines_;
    audit::MerkleTree tree_;
};

}  // namespace licentra::test
