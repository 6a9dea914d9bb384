// Audit log directories written entry by entry with chosen times, segment boundaries and
// checkpoint sizes, for the pruning tests: the daemon stamps entries with the clock, and a test
// that needs old entries must not wait for them to become old.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "audit/checkpoint.hpp"
#include "audit/entry.hpp"
#include "audit/merkle.hpp"
#include "audit/store.hpp"
#include "audit_test_support.hpp"
#include "core/time.hpp"
#include "support/test_support.hpp"

namespace licentra::audit::testing {

inline constexpr const char* kPruneOrigin = "licentra.example/audit/node-1";

// 2026-01-01T00:00:00.000Z: entry i of a crafted log is written i minutes after it.
inline core::TimePoint log_epoch() { return *core::parse_rfc3339_ms("2026-01-01T00:00:00.000Z"); }

struct CraftedLog {
    std::vector<std::size_t> segments;       // entries per segment file, in order
    std::vector<std::uint64_t> checkpoints;  // sizes signed, oldest first
    // The time of entry i (default: log_epoch() + i minutes).
    std::function<core::TimePoint(std::uint64_t)> time_of = nullptr;
};

// Writes the log into dir (created) and returns every entry line, in index order.
inline std::vector<std::string> write_crafted_log(const std::filesystem::path& dir,
                                                  const CraftedLog& spec, crypto::Signer& signer) {
    std::filesystem::create_directories(dir);
    std::vector<std::string> lines;
    MerkleTree tree;
    std::uint64_t index = 0;
    for (std::size_t s = 0; s < spec.segments.size(); ++s) {
        std::string data;
        for (std::size_t k = 0; k < spec.segments[s]; ++k, ++index) {
            Entry e = sample_entry(index);
            e.seq = index;
            e.time = spec.time_of ? spec.time_of(index) : log_epoch() + std::chrono::minutes(index);
            const std::string line = *serialize_entry(e);
            tree.append(leaf_hash(core::as_bytes(line)));
            lines.push_back(line);
            data += line + "\n";
        }
        test::write_file(dir / segment_file_name(s), data);
    }
    auto cs = *CheckpointSigner::create("licentra.example/audit", signer);
    std::string notes;
    for (std::uint64_t size : spec.checkpoints) {
        notes += *cs.sign(Checkpoint{kPruneOrigin, size, *tree.root(size)});
    }
    test::write_file(dir / "checkpoints", notes);
    return lines;
}

// Every regular file of dir but the lock file (name -> bytes), to show what a command changed.
inline std::map<std::string, std::string> snapshot(const std::filesystem::path& dir) {
    std::map<std::string, std::string> out;
    for (const auto& f : std::filesystem::directory_iterator(dir)) {
        const std::string name = f.path().filename().string();
        if (f.is_regular_file() && name != kLockFile) out[name] = test::read_file(f.path());
    }
    return out;
}

}  // namespace licentra::audit::testing
