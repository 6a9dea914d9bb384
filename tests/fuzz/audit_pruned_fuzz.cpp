// libFuzzer target: the pruned-record parser (the line that stands for pruned entries in a
// segment). Anything parse_pruned_record accepts must re-serialize to exactly the input bytes
// and hold 1-1024 leaf hashes; the Result and out-parameter forms must agree.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "audit/pruned.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    auto record = licentra::audit::parse_pruned_record(line);
    licentra::audit::PrunedRecord out;
    const bool ok = licentra::audit::parse_pruned_record(line, &out).ok();
    if (ok != record.ok()) std::abort();
    if (!record) return 0;
    if (!licentra::audit::is_pruned_record(line)) std::abort();
    if (record->leaves.empty() || record->leaves.size() > licentra::audit::kMaxPrunedLeaves) {
        std::abort();
    }
    if (licentra::audit::serialize_pruned_record(*record) != line) std::abort();
    if (!(out == *record)) std::abort();
    return 0;
}
