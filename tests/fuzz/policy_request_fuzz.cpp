// libFuzzer target for stored approval requests (ApprovalRequest::from_json): malformed or
// tampered input is refused with an error, never a crash; accepted input round-trips exactly.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "policy/approval.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace licentra;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto r = policy::ApprovalRequest::from_json(text);
    if (!r.ok()) return 0;
    const std::string again = r->to_json();
    auto back = policy::ApprovalRequest::from_json(again);
    if (!back.ok() || back->to_json() != again) __builtin_trap();
    return 0;
}
