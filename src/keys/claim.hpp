// One winner among daemons that act at the same instant, on a token that offers no
// compare-and-swap (docs/adr/0004-shared-state-on-the-token.md).
//
// A decision point (a request to close, a key version number to create) is a label prefix.
// To act, a daemon checks that nobody has claimed it yet (pre_check), writes one claim object
// "<prefix><nonce>" (or "<prefix><nonce>/<author>") with a fresh 128-bit random nonce, waits
// `settle`, lists the claims and wins only if its own claim is the only one; a contended
// claimer removes its claim and stands back. This is Fischer's timed mutual exclusion: it is
// safe as long as the check-then-write step of every daemon finishes within `write_bound`
// (each daemon measures its own step on a monotonic clock and withdraws a late claim) and
// settle > write_bound. "Only one" rather than "lowest" keeps it safe when one of two racing
// daemons cannot see the other's claim (docs/adr/0004). Losing or withdrawing is always safe;
// liveness is restored by the caller retrying after a random delay.
//
// Thread-safety: claim() is reentrant; the storage callbacks must be thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace licentra::keys {

struct ClaimTiming {
    // Longest check-then-write step that still counts; a slower one is withdrawn.
    std::chrono::milliseconds write_bound{500};
    // How long a claimer waits before reading the claims back; must exceed write_bound.
    std::chrono::milliseconds settle{1000};
    // 0 < write_bound < settle: the safety argument needs every competing claim visible after
    // the settle.
    [[nodiscard]] bool workable() const noexcept {
        return write_bound > std::chrono::milliseconds::zero() && settle > write_bound;
    }
};

struct ClaimStorage {
    // Labels (full) of the objects whose label starts with prefix.
    std::function<core::Result<std::vector<std::string>>(const std::string& prefix)> list;
    std::function<core::Status(const std::string& label, core::ByteView value)> create;
    std::function<core::Status(const std::string& label)> remove;
    // Waits on the monotonic clock (tests may inject a clock-driven wait).
    std::function<void(std::chrono::milliseconds)> wait;
};

enum class ClaimOutcome {
    won,        // this daemon alone acts
    lost,       // another claim exists (contended), or the point was already claimed or decided
    withdrawn,  // this daemon's step was slower than write_bound: it claimed nothing
};

// What one claim() did, for the caller's log and for releasing a won claim.
struct ClaimReport {
    std::string claimed;                // the label of the claim a winner left on the token
    std::chrono::milliseconds step{0};  // how long the check-then-write step took (0: not taken)
};

// The end of a log line about a withdrawn claim: "took <step> ms, longer than
// cluster.claim_write_bound (<bound> ms); withdrawn".
[[nodiscard]] std::string withdrawn_note(const ClaimReport& report, const ClaimTiming& timing);

// claim() refuses (lost) if any claim exists under prefix; pre_check (optional) adds the
// caller's own "still open" test (e.g. nothing decided yet). Both run inside the timed step.
// author (optional) is appended to the claim label so that the object names who made it.
// value: the claim object's content. report (optional) says what happened (ClaimReport).
[[nodiscard]] core::Result<ClaimOutcome> claim(const ClaimStorage& storage,
                                               const std::string& prefix, const std::string& author,
                                               core::ByteView value, const ClaimTiming& timing,
                                               const std::function<core::Result<bool>()>& pre_check,
                                               ClaimReport* report = nullptr);

// A random delay in [0, settle): replicas that contended retry at different times.
[[nodiscard]] std::chrono::milliseconds retry_delay(const ClaimTiming& timing);

// Removes a claim this daemon made (label as claim() reported it). A claim left behind keeps
// every other claimer standing back (and a request "closing") until it is abandoned, so a
// failed removal is tried again, three more times within 140 ms.
[[nodiscard]] core::Status release_claim(const ClaimStorage& storage, const std::string& label);

// The nonce part of a claim label under prefix ("" if the label is not a claim).
[[nodiscard]] std::string claim_nonce(const std::string& prefix, const std::string& label);

// The lowest claim nonce among labels under prefix ("" if none).
[[nodiscard]] std::string lowest_claim(const std::string& prefix,
                                       const std::vector<std::string>& labels);

}  // namespace licentra::keys
