// Fuzzes the strict YAML configuration loader: parse, then validate what parsed.
// Invariants: no crash or exception; every diagnostic names the file and has a message.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view yaml(reinterpret_cast<const char*>(data), size);
    auto r = licentra::config::parse_config(yaml, "fuzz.yaml", "/nonexistent-fuzz-base");
    for (const auto& d : r.diagnostics) {
        if (d.file != "fuzz.yaml" || d.message.empty()) std::abort();
    }
    if (r.ok()) {
        for (const auto& d : licentra::config::validate_config(r.config)) {
            if (d.message.empty()) std::abort();
        }
    }
    return 0;
}
