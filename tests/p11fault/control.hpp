// The control file of the fault-injecting PKCS#11 module: one rule per line.
//
//   <function|*> <action>... [<trigger>]      # comment
//
//   actions:  rv=<CKR_NAME|number>   return this instead of calling the real function
//             delay=<duration>       sleep, then go on (to rv= or the real function)
//             jitter=<duration>      with delay: add a uniform random 0..jitter
//             hang                   block until no hang rule names the function any more
//   triggers: every (the default) | nth=<N> (only the N-th call since the rule was loaded)
//             | probability=<0..1>
//   duration: <number>us|ms|s, e.g. 5ms, 1.5ms, 250us
//
// "*" names every function except C_Initialize, C_Finalize and C_GetFunctionList (which are
// never faulted unless named; C_GetFunctionList never). hang excludes rv= and delay=.
// No exceptions: every malformed line becomes a LineError and is otherwise ignored.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "p11fault/functions.hpp"

namespace licentra::p11fault {

enum class Trigger { every, nth, probability };

struct Rule {
    std::size_t line = 0;                // 1-based line in the control file
    std::optional<Fn> function;          // empty: "*"
    std::optional<CK_RV> rv;             // injected return value
    std::chrono::microseconds delay{0};  // before rv= or the real call
    std::chrono::microseconds jitter{0};
    bool hang = false;
    Trigger trigger = Trigger::every;
    std::uint64_t nth = 0;     // Trigger::nth, >= 1
    double probability = 1.0;  // Trigger::probability, 0..1

    // Whether this rule concerns calls of f ("*" leaves out initialization and finalization).
    [[nodiscard]] bool applies_to(Fn f) const noexcept;
};

struct LineError {
    std::size_t line = 0;
    std::string message;
    std::string text;  // the line as written
};

struct Control {
    std::vector<Rule> rules;
    std::vector<LineError> errors;
};

[[nodiscard]] Control parse_control(std::string_view text);

// "CKR_DEVICE_ERROR", "DEVICE_ERROR", "0x30" or "48"; CKR_OK is refused (it would report
// success without doing the work).
[[nodiscard]] std::optional<CK_RV> parse_rv(std::string_view text);
// The CKR_ name of rv, or its hex value.
[[nodiscard]] std::string rv_name(CK_RV rv);
// "5ms", "1.5ms", "250us", "2s" (non-negative, at most one hour).
[[nodiscard]] std::optional<std::chrono::microseconds> parse_duration(std::string_view text);
[[nodiscard]] std::optional<Fn> function_by_name(std::string_view name);

}  // namespace licentra::p11fault
