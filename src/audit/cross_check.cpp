#include "audit/cross_check.hpp"

#include <string_view>
#include <utility>

namespace licentra::audit {

namespace {

constexpr std::string_view kExecuteSuffix = ".execute";

bool is_execution(const std::string& action) {
    return action.size() > kExecuteSuffix.size() &&
           std::string_view(action).substr(action.size() - kExecuteSuffix.size()) == kExecuteSuffix;
}

std::string at(const std::string& origin, std::uint64_t index, const std::string& action) {
    return origin + " entry " + std::to_string(index) + " (" + action + ")";
}

}  // namespace

void LifecycleFacts::add(const Entry& entry) {
    // Denied and failed entries record what was asked for, not what happened.
    if (entry.result != Outcome::allowed) return;
    if (entry.key && entry.version && entry.kid) {
        auto triple = std::make_tuple(*entry.key, *entry.version, *entry.kid);
        if (seen_.emplace(std::move(triple), kids_.size()).second) {
            kids_.push_back({*entry.key, *entry.version, *entry.kid, entry.action, entry.seq});
        }
    }
    if (entry.request_digest && is_execution(entry.action)) {
        executions_.push_back({*entry.request_digest, entry.action, entry.seq});
    }
}

std::vector<CrossFinding> cross_check(const std::vector<CrossLog>& logs) {
    std::vector<CrossFinding> findings;

    // Origins first: a later log with an origin already seen takes no further part.
    std::vector<bool> included(logs.size(), true);
    std::map<std::string, std::size_t> origins;
    for (std::size_t i = 0; i < logs.size(); ++i) {
        auto [it, inserted] = origins.emplace(logs[i].origin, i);
        if (inserted) continue;
        included[i] = false;
        findings.push_back({"audit.cross_duplicate_origin",
                            {it->second, std::nullopt},
                            {i, std::nullopt},
                            "two logs have origin " + logs[i].origin});
    }

    struct FirstKid {
        std::size_t log;
        const LifecycleFacts::KidRecord* record;
    };
    std::map<std::pair<std::string, std::uint64_t>, FirstKid> first_kid;
    for (std::size_t i = 0; i < logs.size(); ++i) {
        if (!included[i]) continue;
        for (const auto& r : logs[i].facts.kids()) {
            auto [it, inserted] = first_kid.try_emplace({r.key, r.version}, FirstKid{i, &r});
            if (inserted || it->second.record->kid == r.kid) continue;
            const FirstKid& f = it->second;
            findings.push_back({"audit.cross_kid_conflict",
                                {f.log, f.record->index},
                                {i, r.index},
                                "key " + r.key + " version " + std::to_string(r.version) +
                                    " has kid " + f.record->kid + " at " +
                                    at(logs[f.log].origin, f.record->index, f.record->action) +
                                    " and kid " + r.kid + " at " +
                                    at(logs[i].origin, r.index, r.action)});
        }
    }

    struct FirstExecution {
        std::size_t log;
        const LifecycleFacts::Execution* execution;
    };
    std::map<std::string, FirstExecution> first_execution;
    for (std::size_t i = 0; i < logs.size(); ++i) {
        if (!included[i]) continue;
        for (const auto& x : logs[i].facts.executions()) {
            auto [it, inserted] =
                first_execution.try_emplace(x.request_digest, FirstExecution{i, &x});
            if (inserted) continue;
            const FirstExecution& f = it->second;
            findings.push_back(
                {"audit.cross_double_execution",
                 {f.log, f.execution->index},
                 {i, x.index},
                 "request " + x.request_digest + " executed at " +
                     at(logs[f.log].origin, f.execution->index, f.execution->action) +
                     " and again at " + at(logs[i].origin, x.index, x.action)});
        }
    }
    return findings;
}

}  // namespace licentra::audit
