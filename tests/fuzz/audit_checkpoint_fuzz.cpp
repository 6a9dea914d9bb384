// libFuzzer target: signed-note and checkpoint parsing, verifier keys, and note verification
// with a fixed key. Accepted bodies must round-trip through checkpoint_body().
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "audit/checkpoint.hpp"

namespace {

// The verifier key of test-vectors/c2sp-signed-note.json.
constexpr std::string_view kVerifierKey =
    "licentra.example/audit+e90c851c+ASFS+NGbeR0kRTJC4V8uq2y3z/p7al7TAJeWDgaYgdsS";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace licentra::audit;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (auto note = parse_signed_note(text)) {
        if (auto cp = parse_checkpoint_body(note->text)) {
            if (checkpoint_body(*cp) != note->text) std::abort();
        }
    }
    static const NoteVerifier verifier = *NoteVerifier::parse(kVerifierKey);
    (void)verifier.open_checkpoint(text);
    if (auto v = NoteVerifier::parse(text)) {
        if (v->to_string() != text) std::abort();
    }
    return 0;
}
