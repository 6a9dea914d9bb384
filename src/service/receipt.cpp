// GET /v1/tokens/receipt: the inclusion receipt of a token's audit entry (service.hpp).
#include "audit/receipt.hpp"

#include <chrono>

#include "core/bytes.hpp"
#include "service/service.hpp"

namespace licentra::service {

using core::ErrorKind;
using core::make_error;
namespace act = core::action;

namespace {

// The action refusals of a receipt are audited under; authorization is token.sign on the
// entry's key.
constexpr std::string_view kReceiptAction = "token.receipt";

}  // namespace

core::Result<std::string> Service::build_receipt(std::uint64_t index,
                                                 const std::string& line) const {
    using Result = core::Result<std::string>;
    // The note and its size come from one read; the tree only grows, so the proof for that
    // size is the same whenever it is computed.
    std::string note = deps_.audit->latest_checkpoint();
    auto cp = deps_.audit->verifier().open_checkpoint(note);
    if (!cp) return Result(std::move(cp).error());
    if (cp->size <= index) {
        return Result(make_error(ErrorKind::internal, "service.receipt_not_covered",
                                 "the newest checkpoint does not cover the entry"));
    }
    auto leaf = deps_.audit->leaf(index);
    if (!leaf) return Result(std::move(leaf).error());
    // The line read from the segment file must be the leaf the tree holds.
    if (audit::leaf_hash(core::as_bytes(line)) != *leaf) {
        return Result(make_error(
            ErrorKind::integrity, "service.receipt_entry_mismatch",
            "entry " + std::to_string(index) + " read from the log does not hash to its leaf"));
    }
    auto proof = deps_.audit->inclusion_proof(index, cp->size);
    if (!proof) return Result(std::move(proof).error());
    audit::Receipt r;
    r.extra = line;
    r.index = index;
    r.proof = std::move(proof).value();
    r.checkpoint = std::move(note);
    return Result(audit::format_receipt(r));
}

void Service::token_receipt(const Caller& caller, std::uint64_t index,
                            std::optional<std::string> token_sha256,
                            std::function<void(core::Result<std::string>)> done) {
    using Result = core::Result<std::string>;
    const auto engine = deps_.policy->current();
    const std::string action(kReceiptAction);
    auto principal = identify(*engine, caller, action);
    if (!principal) return done(Result(principal.error()));
    const std::string& name = (*principal)->name;
    // Receipts are for signers: anyone else learns nothing, not even the size of the log.
    bool signer = false;
    for (const auto& rules : engine->keys()) {
        if (engine->permits(**principal, policy::Action::token_sign, rules.name)) {
            signer = true;
            break;
        }
    }
    if (!signer) {
        auto err = make_error(ErrorKind::denied, "policy.action_not_granted",
                              "\"" + name + "\" may not token.sign with any key");
        audit_refusal(*engine, name, action, caller, std::nullopt, err);
        return done(Result(std::move(err)));
    }
    if (index >= deps_.audit->size()) {
        return done(
            Result(make_error(ErrorKind::not_found, "audit.index_out_of_range", "no such entry")));
    }
    // A pruned entry keeps only its leaf hash: nothing would tie a token to it, nor tell whose
    // key it was. The log may prune while it runs, so a line that reads as pruned is asked
    // about again after the read (a full line read before the prune still proves the leaf).
    const auto pruned = [&] {
        return Result(make_error(
            ErrorKind::not_found, "service.entry_pruned",
            "entry " + std::to_string(index) + " was pruned past retention; it has no receipt"));
    };
    if (deps_.audit->pruned(index)) return done(pruned());
    auto lines = deps_.audit->read_entries(index, index + 1);
    if (!lines) return done(Result(std::move(lines).error()));
    if (lines->size() != 1) {
        return done(Result(
            make_error(ErrorKind::internal, "service.receipt_entry_missing", "entry not read")));
    }
    std::string line = std::move(lines->front());
    auto entry = audit::parse_entry(line);
    if (!entry) {
        if (deps_.audit->pruned(index)) return done(pruned());
        return done(Result(std::move(entry).error()));
    }
    // The entry's key decides, as for signing: a caller sees receipts only for its own keys.
    const std::string key = entry->key.value_or(std::string());
    if (auto grant = engine->authorize<act::TokenSign>(**principal, key); !grant) {
        audit_refusal(*engine, name, action, caller,
                      key.empty() ? std::nullopt : std::optional<std::string>(key), grant.error());
        return done(Result(grant.error()));
    }
    if (entry->action != act::TokenSign::name || entry->result != audit::Outcome::allowed ||
        !entry->token_sha256) {
        return done(Result(
            make_error(ErrorKind::conflict, "service.not_token_entry",
                       "entry " + std::to_string(index) + " does not record an issued token")));
    }
    if (token_sha256 && *token_sha256 != *entry->token_sha256) {
        return done(
            Result(make_error(ErrorKind::conflict, "service.token_mismatch",
                              "entry " + std::to_string(index) +
                                  " records another token (with several replicas, ask the one that "
                                  "issued the token)")));
    }
    if (deps_.audit->checkpoint_size() > index) return done(build_receipt(index, line));
    auto pending = [this, index]() {
        auto err = make_error(
            ErrorKind::unavailable, "service.receipt_pending",
            "no signed checkpoint covers entry " + std::to_string(index) + " yet; ask again later");
        err.retry_after = deps_.receipt_retry_after;
        return Result(std::move(err));
    };
    if (deps_.checkpoints == nullptr) return done(pending());
    // Wait for the next checkpoint on the waiter's thread: this thread returns at once.
    deps_.checkpoints->wait(
        index + 1, audit::CheckpointWaiter::Clock::now() + deps_.receipt_wait,
        [this, index, line = std::move(line), done = std::move(done), pending](bool covered) {
            if (!covered && deps_.audit->checkpoint_size() <= index) return done(pending());
            done(build_receipt(index, line));
        });
}

}  // namespace licentra::service
