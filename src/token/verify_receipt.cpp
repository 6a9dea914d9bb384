// licentra::verify_receipt (include/licentra/verify.hpp): the public face of
// audit::verify_receipt for licensed products.
#include <new>

#include "audit/receipt.hpp"
#include "licentra/verify.hpp"

namespace licentra {

namespace {

static_assert(kMaxReceiptBytes == audit::kMaxReceiptBytes);

ReceiptResult fail(VerifyErrc error, std::string message) {
    ReceiptResult r;
    r.error = error;
    r.message = std::move(message);
    return r;
}

// The audit module's reason codes, grouped into the library's stable error codes.
VerifyErrc receipt_error(const std::string& code) {
    if (code == "audit.checkpoint_unsigned" || code == "audit.checkpoint_origin") {
        return VerifyErrc::receipt_wrong_log;
    }
    if (code == "audit.checkpoint_signature_invalid") return VerifyErrc::receipt_signature_invalid;
    if (code == "audit.inclusion_proof_invalid" || code == "audit.receipt_index_mismatch") {
        return VerifyErrc::receipt_proof_invalid;
    }
    if (code == "audit.receipt_not_token" || code == "audit.receipt_token_mismatch") {
        return VerifyErrc::receipt_token_mismatch;
    }
    return VerifyErrc::malformed_receipt;
}

}  // namespace

ReceiptResult verify_receipt(std::string_view token, std::string_view receipt,
                             std::string_view log_key, const ReceiptOptions& options) noexcept {
    try {
        // One trailing newline on the key (as a .vkey file has) is not part of it.
        while (!log_key.empty() && (log_key.back() == '\n' || log_key.back() == '\r')) {
            log_key.remove_suffix(1);
        }
        auto verifier = audit::NoteVerifier::parse(log_key);
        if (!verifier) return fail(VerifyErrc::malformed_log_key, verifier.error().message);
        auto verified = audit::verify_receipt(receipt, *verifier, options.expected_origin);
        if (!verified) {
            return fail(receipt_error(verified.error().code),
                        verified.error().code + ": " + verified.error().message);
        }
        if (auto st = audit::check_receipt_token(*verified, token); !st) {
            return fail(receipt_error(st.error().code),
                        st.error().code + ": " + st.error().message);
        }
        ReceiptResult r;
        r.index = verified->index;
        r.origin = verified->checkpoint.origin;
        r.tree_size = verified->checkpoint.size;
        r.entry_json = std::move(verified->entry_line);
        return r;
    } catch (const std::bad_alloc&) {
        return fail(VerifyErrc::internal, "out of memory");
    } catch (...) {
        return fail(VerifyErrc::internal, "unexpected error");
    }
}

}  // namespace licentra
