// The cross-check behind `licentra audit verify --dir A --dir B ...`: replicas sharing one HSM
// token each keep their own log, and what they record about the shared keys must not contradict.
// Each log is first verified on its own (verify.hpp); this only compares what verified logs say.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "audit/entry.hpp"

namespace licentra::audit {

// What the cross-check needs from one log, gathered entry by entry. Its size grows with the
// number of distinct (key, version, kid) triples and executed requests, not with the log.
class LifecycleFacts {
  public:
    // An allowed entry naming key, version and kid: the first entry of this log recording the
    // triple (the same triple recorded again adds nothing).
    struct KidRecord {
        std::string key;
        std::uint64_t version = 0;
        std::string kid;
        std::string action;
        std::uint64_t index = 0;  // the entry's seq
    };
    // An allowed entry whose action ends in ".execute" and that names a request digest.
    struct Execution {
        std::string request_digest;
        std::string action;
        std::uint64_t index = 0;  // the entry's seq
    };

    // Records what entry says about key versions and executed requests and ignores the rest.
    // Entries are expected in seq order (the order in which findings name them).
    void add(const Entry& entry);

    [[nodiscard]] const std::vector<KidRecord>& kids() const { return kids_; }
    [[nodiscard]] const std::vector<Execution>& executions() const { return executions_; }

  private:
    std::vector<KidRecord> kids_;
    std::map<std::tuple<std::string, std::uint64_t, std::string>, std::size_t> seen_;
    std::vector<Execution> executions_;
};

// One verified log: the origin of its checkpoints and the facts of its entries.
struct CrossLog {
    std::string origin;
    LifecycleFacts facts;
};

// One side of a contradiction: a log (its position in the cross_check argument) and, for
// contradictions between entries, the entry's index in that log.
struct EntryRef {
    std::size_t log = 0;
    std::optional<std::uint64_t> index;
};

struct CrossFinding {
    std::string reason;  // stable code, see cross_check()
    EntryRef first;      // the earlier record (logs in the order given, then by index)
    EntryRef second;     // the record that contradicts it
    std::string message;
};

// Compares the logs with one another and returns every contradiction, in a stable order:
//  - "audit.cross_duplicate_origin": two logs with the same origin (each daemon has its own
//    origin, so two logs of one origin are a copy or a misconfiguration). The later log is
//    left out of the other checks, so a log given twice does not also report every execution
//    twice.
//  - "audit.cross_kid_conflict": one (key, version) recorded with two different kids, within a
//    log or across logs. Reported once per log and conflicting kid, against the first record of
//    that (key, version). The same triple in several logs is normal (each replica records the
//    transitions it sees).
//  - "audit.cross_double_execution": one request digest executed more than once, in one log or
//    in several. Every execution after the first is reported against the first.
// Pure: no I/O, no state; the result depends only on the argument.
[[nodiscard]] std::vector<CrossFinding> cross_check(const std::vector<CrossLog>& logs);

}  // namespace licentra::audit
