#include "keys/claim.hpp"

#include <algorithm>
#include <thread>

#include "crypto/random.hpp"

namespace licentra::keys {

namespace {
constexpr std::size_t kNonceHex = 32;

bool is_hex(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}
}  // namespace

core::Status release_claim(const ClaimStorage& storage, const std::string& label) {
    core::Status st = storage.remove(label);
    for (int again = 0; again < 3 && !st; ++again) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20 << again));
        st = storage.remove(label);
    }
    return st;
}

std::string withdrawn_note(const ClaimReport& report, const ClaimTiming& timing) {
    return "took " + std::to_string(report.step.count()) +
           " ms, longer than cluster.claim_write_bound (" +
           std::to_string(timing.write_bound.count()) + " ms); withdrawn";
}

std::chrono::milliseconds retry_delay(const ClaimTiming& timing) {
    auto r = crypto::random_bytes(2);
    if (!r || timing.settle.count() <= 0) return timing.settle;
    const unsigned v = (static_cast<unsigned>((*r)[0]) << 8) | (*r)[1];
    return std::chrono::milliseconds(static_cast<long>(v) % timing.settle.count());
}

std::string claim_nonce(const std::string& prefix, const std::string& label) {
    if (label.size() < prefix.size() + kNonceHex || label.compare(0, prefix.size(), prefix) != 0) {
        return {};
    }
    std::string nonce = label.substr(prefix.size(), kNonceHex);
    const std::size_t rest = prefix.size() + kNonceHex;
    if (!is_hex(nonce) || (label.size() > rest && label[rest] != '/')) return {};
    return nonce;
}

std::string lowest_claim(const std::string& prefix, const std::vector<std::string>& labels) {
    std::string lowest;
    for (const auto& l : labels) {
        std::string n = claim_nonce(prefix, l);
        if (!n.empty() && (lowest.empty() || n < lowest)) lowest = std::move(n);
    }
    return lowest;
}

core::Result<ClaimOutcome> claim(const ClaimStorage& storage, const std::string& prefix,
                                 const std::string& author, core::ByteView value,
                                 const ClaimTiming& timing,
                                 const std::function<core::Result<bool>()>& pre_check,
                                 ClaimReport* report) {
    if (!timing.workable()) {
        return core::make_error(core::ErrorKind::usage, "keys.claim_timing",
                                "claim timings need 0 < write_bound < settle");
    }
    auto random = crypto::random_bytes(kNonceHex / 2);
    if (!random) return random.error();
    const std::string nonce = core::hex_encode(*random);
    const std::string label = prefix + nonce + (author.empty() ? "" : "/" + author);

    ClaimReport ignored;
    ClaimReport& out = report != nullptr ? *report : ignored;
    out = {};
    const auto started = std::chrono::steady_clock::now();
    auto existing = storage.list(prefix);
    if (!existing) return existing.error();
    if (!lowest_claim(prefix, *existing).empty()) return ClaimOutcome::lost;
    if (pre_check) {
        auto open = pre_check();
        if (!open) return open.error();
        if (!*open) return ClaimOutcome::lost;
    }
    if (auto st = storage.create(label, value); !st) return st.error();
    const auto step = std::chrono::steady_clock::now() - started;
    out.step = std::chrono::ceil<std::chrono::milliseconds>(step);  // over the bound: shown so
    if (step > timing.write_bound) {
        // Others may have decided without seeing this claim: it must not win. Withdraw it.
        (void)release_claim(storage, label);
        return ClaimOutcome::withdrawn;
    }
    if (storage.wait) {
        storage.wait(timing.settle);
    } else {
        std::this_thread::sleep_for(timing.settle);
    }
    auto labels = storage.list(prefix);
    if (!labels) return labels.error();
    bool others = false;
    for (const auto& l : *labels) {
        const std::string n = claim_nonce(prefix, l);
        others |= !n.empty() && n != nonce;
    }
    if (!others) {
        out.claimed = label;
        return ClaimOutcome::won;
    }
    // Contended: stand back and clear the way for a retry. A winner never sees another claim,
    // and of two overlapping claimers at least one sees the other's claim, even on a module
    // whose per-process view can miss a write that raced its own (docs/adr/0004).
    (void)release_claim(storage, label);
    return ClaimOutcome::lost;
}

}  // namespace licentra::keys
