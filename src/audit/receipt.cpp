#include "audit/receipt.hpp"

#include <charconv>

#include "core/bytes.hpp"
#include "crypto/digest.hpp"

namespace licentra::audit {

namespace {

using core::ErrorKind;
using core::make_error;

constexpr std::string_view kExtraPrefix = "extra ";
constexpr std::string_view kIndexPrefix = "index ";
constexpr std::string_view kTokenSignAction = "token.sign";

core::Error malformed(std::string message) {
    return make_error(ErrorKind::integrity, "audit.receipt_malformed", std::move(message));
}

// Takes the next line (without its '\n') off text; nullopt when no '\n' is left.
std::optional<std::string_view> next_line(std::string_view& text) {
    const auto nl = text.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    return line;
}

// Standard base64 (RFC 4648 §4) exactly as base64_encode writes it: one spelling per value.
std::optional<core::Bytes> canonical_base64(std::string_view text) {
    auto bytes = core::base64_decode(text);
    if (!bytes || core::base64_encode(*bytes) != text) return std::nullopt;
    return std::move(bytes).value();
}

// tlog-proof: "an ASCII decimal with no leading zeroes (unless the index is 0)".
std::optional<std::uint64_t> parse_decimal(std::string_view s) {
    if (s.empty() || s.size() > 20 || (s.size() > 1 && s.front() == '0')) return std::nullopt;
    std::uint64_t v = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

core::Error integrity(std::string code, std::string message) {
    return make_error(ErrorKind::integrity, std::move(code), std::move(message));
}

}  // namespace

std::string format_receipt(const Receipt& r) {
    std::string out(kTlogProofHeader);
    out += '\n';
    if (r.extra) {
        out += kExtraPrefix;
        out += core::base64_encode(core::as_bytes(*r.extra));
        out += '\n';
    }
    out += kIndexPrefix;
    out += std::to_string(r.index);
    out += '\n';
    for (const Hash& h : r.proof) {
        out += core::base64_encode(h);
        out += '\n';
    }
    out += '\n';
    out += r.checkpoint;
    return out;
}

core::Result<Receipt> parse_receipt(std::string_view text) {
    if (text.size() > kMaxReceiptBytes) {
        return malformed("receipt is longer than " + std::to_string(kMaxReceiptBytes) + " bytes");
    }
    // tlog-proof: "The first line MUST be the string c2sp.org/tlog-proof@v1".
    auto line = next_line(text);
    if (!line || *line != kTlogProofHeader) {
        return malformed("the first line is not " + std::string(kTlogProofHeader));
    }
    Receipt r;
    line = next_line(text);
    if (!line) return malformed("no index line");
    // "The second line MAY start with the string extra followed by a space".
    if (line->starts_with(kExtraPrefix)) {
        auto extra = canonical_base64(line->substr(kExtraPrefix.size()));
        if (!extra || extra->empty()) return malformed("the extra line is not canonical base64");
        r.extra = std::string(extra->begin(), extra->end());
        line = next_line(text);
        if (!line) return malformed("no index line");
    }
    // "The next line MUST start with the string index followed by a space".
    if (!line->starts_with(kIndexPrefix)) return malformed("no index line");
    auto index = parse_decimal(line->substr(kIndexPrefix.size()));
    if (!index) return malformed("the index is not a decimal without leading zeros");
    r.index = *index;
    // "The next zero or more non-empty lines are the base64-encoded Merkle inclusion proof",
    // then "an empty line".
    for (;;) {
        line = next_line(text);
        if (!line) return malformed("no empty line before the checkpoint");
        if (line->empty()) break;
        if (r.proof.size() == kMaxProofHashes) {
            return malformed("more than " + std::to_string(kMaxProofHashes) + " proof hashes");
        }
        auto h = canonical_base64(*line);
        if (!h || h->size() != std::tuple_size_v<Hash>) {
            return malformed("proof line " + std::to_string(r.proof.size() + 1) +
                             " is not the base64 of a SHA-256 hash");
        }
        auto& out = r.proof.emplace_back();
        std::copy(h->begin(), h->end(), out.begin());
    }
    if (text.empty()) return malformed("no checkpoint after the proof");
    r.checkpoint = std::string(text);
    return r;
}

core::Result<VerifiedReceipt> verify_receipt(std::string_view text, const NoteVerifier& verifier,
                                             std::string_view expected_origin) {
    auto r = parse_receipt(text);
    if (!r) return std::move(r).error();
    // The checkpoint first: nothing in an unauthenticated receipt is worth reading before it.
    auto cp = verifier.open_checkpoint(r->checkpoint);
    if (!cp) return std::move(cp).error();
    if (!expected_origin.empty() && cp->origin != expected_origin) {
        return integrity("audit.checkpoint_origin", "the receipt's checkpoint is of log '" +
                                                        cp->origin + "', not '" +
                                                        std::string(expected_origin) + "'");
    }
    // tlog-proof: "Applications MUST NOT implicitly trust the extra data": it is trusted below
    // only because its leaf hash is proved to be in the signed tree.
    if (!r->extra) {
        return integrity("audit.receipt_entry_invalid", "the receipt carries no logged entry");
    }
    auto entry = parse_entry(*r->extra);
    if (!entry) {
        return integrity(
            "audit.receipt_entry_invalid",
            "the receipt's entry is not a canonical audit entry: " + entry.error().message);
    }
    if (entry->seq != r->index) {
        return integrity("audit.receipt_index_mismatch",
                         "the receipt's entry has seq " + std::to_string(entry->seq) +
                             " but the proof is for index " + std::to_string(r->index));
    }
    // RFC 9162 §2.1.3.2: from the leaf hash, the index and the proof, recompute the root.
    const Hash leaf = leaf_hash(core::as_bytes(*r->extra));
    if (auto st = verify_inclusion(r->index, cp->size, leaf, r->proof, cp->root); !st) {
        return integrity("audit.inclusion_proof_invalid",
                         "entry " + std::to_string(r->index) + " is not proved in the tree of " +
                             std::to_string(cp->size) + " entries: " + st.error().message);
    }
    VerifiedReceipt out;
    out.index = r->index;
    out.checkpoint = std::move(cp).value();
    out.entry_line = std::move(*r->extra);
    out.entry = std::move(entry).value();
    return out;
}

core::Status check_receipt_token(const VerifiedReceipt& receipt, std::string_view token) {
    const Entry& e = receipt.entry;
    if (e.action != kTokenSignAction || e.result != Outcome::allowed || !e.token_sha256) {
        return integrity("audit.receipt_not_token",
                         "logged entry " + std::to_string(receipt.index) +
                             " does not record an issued token (action " + e.action + ", " +
                             std::string(to_string(e.result)) + ")");
    }
    const std::string hash = core::hex_encode(crypto::sha256(core::as_bytes(token)));
    if (hash != *e.token_sha256) {
        return integrity("audit.receipt_token_mismatch",
                         "the token's SHA-256 is " + hash + " but logged entry " +
                             std::to_string(receipt.index) + " records " + *e.token_sha256);
    }
    return core::ok_status();
}

}  // namespace licentra::audit
