// Rate-limited fault and recovery lines for the operational log.
#include <string>

#include "hsm/internal.hpp"

namespace licentra::hsm {

namespace {
long long millis(std::chrono::steady_clock::duration d) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}
}  // namespace

void FaultLog::set_sink(Sink sink) {
    std::lock_guard lock(mutex_);
    sink_ = std::move(sink);
}

void FaultLog::fault(const std::string& cls, std::string_view detail) {
    const auto now = std::chrono::steady_clock::now();
    std::string line;
    Sink sink;
    {
        std::lock_guard lock(mutex_);
        Entry& e = entries_[cls];
        if (!e.since) {
            e.since = now;
            active_.fetch_add(1);
        }
        if (e.last_fault_line && now - *e.last_fault_line < interval_) {
            ++e.suppressed;
            return;
        }
        e.last_fault_line = now;
        line = "hsm fault " + cls + ": " + std::string(detail);
        if (e.suppressed > 0) {
            line += " (" + std::to_string(e.suppressed) + " more since the last line)";
            e.suppressed = 0;
        }
        sink = sink_;
    }
    if (sink) sink(line);
}

void FaultLog::recovered(std::string_view prefix) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::string> lines;
    Sink sink;
    {
        std::lock_guard lock(mutex_);
        for (auto& [cls, e] : entries_) {
            if (!e.since || cls.compare(0, prefix.size(), prefix) != 0) continue;
            const auto lasted = now - *e.since;
            e.since.reset();
            active_.fetch_sub(1);
            if (e.last_recovery_line && now - *e.last_recovery_line < interval_) continue;
            e.last_recovery_line = now;
            lines.push_back("hsm fault " + cls + ": recovered after " +
                            std::to_string(millis(lasted)) + " ms");
        }
        sink = sink_;
    }
    if (sink) {
        for (const auto& l : lines) sink(l);
    }
}

namespace detail {

void TokenState::note_rv(const Attempt& a, bool signing) {
    if (a.fault_rv == CKR_OK) return;
    const Fault f = classify(a.fault_rv);
    if (f == Fault::none || f == Fault::request || f == Fault::conflict) return;
    std::string cls = std::string(fault_code(f));
    if (signing) cls = "signing: " + cls;
    faults.fault(cls, std::string(a.fault_function != nullptr ? a.fault_function : "C_*") +
                          " returned " + rv_name(a.fault_rv) + " on token " + label);
}

}  // namespace detail

FaultLog& Token::fault_log() const noexcept { return state_->faults; }

}  // namespace licentra::hsm
