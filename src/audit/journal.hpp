// What the use cases need of the audit log, and nothing more: the narrow interface the service
// works against (service::Dependencies::audit). The daemon passes its AuditLog; a test may pass
// a journal that fails any call.
//
// Every member has the contract of the AuditLog member of the same name (audit/log.hpp).
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "audit/checkpoint.hpp"
#include "audit/entry.hpp"
#include "audit/merkle.hpp"
#include "core/grant.hpp"
#include "core/result.hpp"

namespace licentra::audit {

struct Appended {
    std::uint64_t index = 0;  // leaf index == entry seq
    Hash leaf_hash{};
};

class GrantedRead;

class Journal {
  public:
    using AppendCallback = std::function<void(core::Result<Appended>)>;

    virtual ~Journal() = default;

    // ---- appending ----
    [[nodiscard]] virtual core::Result<Appended> append(Entry entry) = 0;
    virtual void append_async(Entry entry, AppendCallback done) = 0;
    // Whether an append can be made durable now.
    [[nodiscard]] virtual bool healthy() const noexcept = 0;

    // ---- reading ----
    [[nodiscard]] virtual std::uint64_t size() const = 0;
    [[nodiscard]] virtual std::uint64_t checkpoint_size() const = 0;
    [[nodiscard]] virtual core::Result<Hash> root(std::uint64_t size) const = 0;
    [[nodiscard]] virtual core::Result<Hash> leaf(std::uint64_t index) const = 0;
    [[nodiscard]] virtual std::string latest_checkpoint() const = 0;
    [[nodiscard]] virtual core::Result<std::vector<Hash>> inclusion_proof(
        std::uint64_t index, std::uint64_t size) const = 0;
    [[nodiscard]] virtual core::Result<std::vector<Hash>> consistency_proof(
        std::uint64_t first, std::uint64_t second) const = 0;
    [[nodiscard]] virtual core::Result<std::vector<std::string>> read_entries(
        std::uint64_t start, std::uint64_t end) const = 0;
    [[nodiscard]] virtual bool pruned(std::uint64_t index) const = 0;
    [[nodiscard]] virtual const NoteVerifier& verifier() const noexcept = 0;

    // What a principal's audit.read grant lets it read (GrantedRead below). The daemon's own
    // reads (a receipt after the caller's token.sign grant, checkpoint signing) use the members
    // above directly.
    [[nodiscard]] GrantedRead reader(const core::Grant<core::action::AuditRead>& grant) const;
};

// The log as one principal's audit.read grant opened it: the reads of the log API, nothing else.
class GrantedRead {
  public:
    [[nodiscard]] const std::string& principal() const noexcept { return principal_; }
    [[nodiscard]] std::uint64_t size() const { return log_.size(); }
    [[nodiscard]] std::string latest_checkpoint() const { return log_.latest_checkpoint(); }
    [[nodiscard]] core::Result<std::vector<std::string>> read_entries(std::uint64_t start,
                                                                      std::uint64_t end) const {
        return log_.read_entries(start, end);
    }
    [[nodiscard]] core::Result<Hash> leaf(std::uint64_t index) const { return log_.leaf(index); }
    [[nodiscard]] core::Result<Hash> root(std::uint64_t size) const { return log_.root(size); }
    [[nodiscard]] core::Result<std::vector<Hash>> inclusion_proof(std::uint64_t index,
                                                                  std::uint64_t size) const {
        return log_.inclusion_proof(index, size);
    }
    [[nodiscard]] core::Result<std::vector<Hash>> consistency_proof(std::uint64_t first,
                                                                    std::uint64_t second) const {
        return log_.consistency_proof(first, second);
    }

  private:
    friend class Journal;
    GrantedRead(const Journal& log, std::string principal)
        : log_(log), principal_(std::move(principal)) {}
    const Journal& log_;
    std::string principal_;
};

inline GrantedRead Journal::reader(const core::Grant<core::action::AuditRead>& grant) const {
    return GrantedRead(*this, grant.principal());
}

}  // namespace licentra::audit
