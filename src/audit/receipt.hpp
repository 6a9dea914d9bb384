// Inclusion receipts: the proof that one entry of the audit log is in a signed checkpoint, in the
// C2SP tlog-proof format (https://c2sp.org/tlog-proof), carrying the entry itself as its extra
// data so an offline verifier can recompute the leaf hash:
//
//   c2sp.org/tlog-proof@v1\n
//   extra <base64(canonical entry line, without '\n')>\n
//   index <leaf index, decimal>\n
//   <base64 inclusion proof hash>\n        (zero or more, leaf's sibling first, RFC 9162 §2.1.3)
//   \n
//   <the signed checkpoint note, verbatim>
//
// A receipt reveals the one entry and hashes of other subtrees, nothing about other entries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/checkpoint.hpp"
#include "audit/entry.hpp"
#include "audit/merkle.hpp"
#include "core/result.hpp"

namespace licentra::audit {

inline constexpr std::string_view kTlogProofHeader = "c2sp.org/tlog-proof@v1";
// A receipt is at most this long: a 64 KiB entry in base64, 64 proof hashes, a checkpoint.
inline constexpr std::size_t kMaxReceiptBytes = 128 * 1024;
// RFC 9162 trees have at most 2^64 leaves, so no inclusion proof has more than 64 hashes.
inline constexpr std::size_t kMaxProofHashes = 64;

struct Receipt {
    std::optional<std::string> extra;  // the decoded extra data (for ours: the entry line)
    std::uint64_t index = 0;
    std::vector<Hash> proof;
    std::string checkpoint;  // the signed note, verbatim, ending in '\n'
    bool operator==(const Receipt&) const = default;
};

// The tlog-proof text of r. Precondition: r.checkpoint is a signed note (ends in '\n').
[[nodiscard]] std::string format_receipt(const Receipt& r);

// Strict parse of the tlog-proof text: the header line, an optional "extra" line (standard,
// canonical base64, non-empty), "index N" (decimal, no leading zeros), at most kMaxProofHashes
// lines of base64 of exactly 32 bytes, an empty line, then the checkpoint (the rest, parsed as a
// signed note only by verify_receipt). At most kMaxReceiptBytes. A trailing "\r" on a line is
// refused like any other malformation. Error integrity "audit.receipt_malformed".
[[nodiscard]] core::Result<Receipt> parse_receipt(std::string_view text);

struct VerifiedReceipt {
    std::uint64_t index = 0;
    Checkpoint checkpoint;
    std::string entry_line;  // canonical JSON, without '\n'
    Entry entry;
};

// Verifies a receipt issued by this log (GET /v1/tokens/receipt) with the log's verifier key:
//   1. parse_receipt;
//   2. the checkpoint is a signed note with a valid signature by `verifier` (another log's key:
//      "audit.checkpoint_unsigned") and, when expected_origin is not empty, has that origin
//      ("audit.checkpoint_origin");
//   3. the extra data is a canonical entry (parse_entry) whose seq is the receipt's index
//      ("audit.receipt_entry_invalid", "audit.receipt_index_mismatch");
//   4. RFC 9162 §2.1.3.2: the leaf hash of the entry line, the index and the proof give the
//      checkpoint's root ("audit.inclusion_proof_invalid").
// Every error is of kind integrity. Thread-safe; never throws.
[[nodiscard]] core::Result<VerifiedReceipt> verify_receipt(std::string_view text,
                                                           const NoteVerifier& verifier,
                                                           std::string_view expected_origin = {});

// That the verified entry records the issue of exactly this token: an allowed "token.sign" entry
// ("audit.receipt_not_token" otherwise) whose token_sha256 is the SHA-256 of token
// ("audit.receipt_token_mismatch"). Errors of kind integrity.
[[nodiscard]] core::Status check_receipt_token(const VerifiedReceipt& receipt,
                                               std::string_view token);

}  // namespace licentra::audit
