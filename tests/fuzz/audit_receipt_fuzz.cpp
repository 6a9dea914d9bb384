// libFuzzer target: inclusion receipts (C2SP tlog-proof). Accepted receipts must round-trip
// through format_receipt(); verification with a fixed log key and the product library's
// verify_receipt() must never crash on any input.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "audit/checkpoint.hpp"
#include "audit/receipt.hpp"
#include "licentra/verify.hpp"

namespace {

// The verifier key of test-vectors/c2sp-signed-note.json.
constexpr std::string_view kVerifierKey =
    "licentra.example/audit+e90c851c+ASFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace licentra::audit;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (auto r = parse_receipt(text)) {
        if (format_receipt(*r) != text) std::abort();
        if (r->proof.size() > kMaxProofHashes) std::abort();
    }
    static const NoteVerifier verifier = *NoteVerifier::parse(kVerifierKey);
    if (auto v = verify_receipt(text, verifier)) {
        // Only a receipt whose entry the proof ties to a signed root gets here.
        if (v->entry.seq != v->index || v->index >= v->checkpoint.size) std::abort();
    }
    const auto lib = licentra::verify_receipt("a.b.c", text, kVerifierKey);
    if (lib.ok() && lib.tree_size <= lib.index) std::abort();
    return 0;
}
