// libFuzzer target for the policy loader: any input must give either a valid Engine or a list
// of located diagnostics, never a crash, hang or exception. Valid policies are also consulted
// (matrix, decisions, claim validation) to exercise the compiled tables.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "policy/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace licentra;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    policy::PolicyLoad l = policy::load_policy_text(text, "fuzz.yaml");
    if (!l.ok()) {
        if (l.diagnostics.empty()) __builtin_trap();  // a rejection always says why
        for (const auto& d : l.diagnostics) {
            if (d.line < 1 || d.column < 1 || d.message.empty()) __builtin_trap();
        }
        return 0;
    }
    const policy::Engine& e = *l.engine;
    (void)e.render_matrix();
    const auto now = core::from_unix_millis(1'800'000'000'000);
    const nlohmann::json claims = {{"sub", "x"}, {"exp", 1'800'000'600}, {"email", "a"}};
    for (const auto& p : e.principals()) {
        for (const auto& k : e.keys()) {
            (void)e.authorize<core::action::TokenSign>(p, k.name);
            (void)e.authorize<core::action::RequestApprove>(p, k.name);
            (void)e.validate_claims(k.name, claims, now);
        }
        (void)e.authorize<core::action::AuditRead>(p);
    }
    return 0;
}
