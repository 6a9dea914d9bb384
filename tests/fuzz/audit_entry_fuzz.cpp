// libFuzzer target: the audit entry parser. Anything parse_entry accepts must re-serialize to
// exactly the input bytes (the canonical-form promise) and parse again to the same entry.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "audit/entry.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    auto entry = licentra::audit::parse_entry(line);
    if (!entry) return 0;
    auto again = licentra::audit::serialize_entry(*entry);
    if (!again || *again != line) std::abort();
    auto reparsed = licentra::audit::parse_entry(*again);
    if (!reparsed || !(*reparsed == *entry)) std::abort();
    return 0;
}
