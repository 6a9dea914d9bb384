// Stand-ins for the service's dependencies in unit tests of its use cases: request records in
// memory (optionally missing from the first listings, as another process's fresh write can be),
// a key store that holds no key and makes none, a pseudonymizer with no key and one that
// digests, an executor that runs each job at once on the calling thread, a real audit log in a
// temporary directory, and a journal in front of it that can fail the n-th append.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "audit/anchor.hpp"
#include "audit/journal.hpp"
#include "audit/log.hpp"
#include "crypto/digest.hpp"
#include "keys/key_manager.hpp"
#include "keys/key_store.hpp"
#include "service/service.hpp"
#include "support/test_support.hpp"
#include "unit/token/test_signer.hpp"

namespace licentra::service::fake {

// Records in memory; the first `hidden_lists` listings answer as if the token did not yet
// show them. Counts listings and records every re-read it was asked for.
class MemoryRequestStore : public RequestStore {
  public:
    core::Status create(const std::string& name, const std::string& json) override {
        if (on_create) on_create(name);  // e.g. a slow token's write
        std::lock_guard lock(mu_);
        records_.emplace(name, json);
        return {};
    }
    core::Result<std::vector<std::pair<std::string, std::string>>> list(
        const std::string& prefix) override {
        std::lock_guard lock(mu_);
        ++lists_;
        if (list_error) return *list_error;
        std::vector<std::pair<std::string, std::string>> out;
        if (lists_ <= hidden_lists) return out;
        for (const auto& [name, text] : records_) {
            if (name.rfind(prefix, 0) == 0) out.emplace_back(name, text);
        }
        return out;
    }
    core::Status remove(const std::string& name) override {
        std::lock_guard lock(mu_);
        records_.erase(name);
        return {};
    }
    void reload_view(std::string_view why) override {
        std::lock_guard lock(mu_);
        reloads_.emplace_back(why);
    }
    int lists() {
        std::lock_guard lock(mu_);
        return lists_;
    }
    std::vector<std::string> reloads() {
        std::lock_guard lock(mu_);
        return reloads_;
    }
    int hidden_lists = 0;
    std::optional<core::Error> list_error;  // every listing fails with it while set
    std::function<void(const std::string& name)> on_create;

  private:
    std::mutex mu_;
    std::map<std::string, std::string> records_;
    int lists_ = 0;
    std::vector<std::string> reloads_;
};

// A token with no keys that refuses to make any: enough for the service's tick and reads.
class NoKeys final : public keys::KeyStore {
  public:
    core::Result<hsm::KeyRef> generate_key(const hsm::GenerateCapability&, unsigned,
                                           crypto::Algorithm) override {
        return refused();
    }
    core::Result<hsm::KeyRef> load_key(const std::string&, const core::Bytes*) override {
        return refused();
    }
    core::Result<std::vector<hsm::KeyInfo>> list_keys(const std::string&) override {
        return std::vector<hsm::KeyInfo>{};
    }
    core::Result<bool> label_exists(const std::string&) override { return false; }
    core::Result<std::vector<core::Result<crypto::PublicKey>>> public_keys(
        const std::vector<std::pair<std::string, core::Bytes>>&) override {
        return std::vector<core::Result<crypto::PublicKey>>{};
    }
    core::Status destroy_private_key(const hsm::DestroyCapability&, const std::string&,
                                     const core::Bytes*) override {
        return refused();
    }
    core::Result<core::Bytes> sign(const hsm::SignCapability&, const hsm::KeyRef&,
                                   core::ByteView) override {
        return refused();
    }
    core::Status create_data(const std::string&, core::ByteView) override { return refused(); }
    core::Status delete_data(const std::string&) override { return refused(); }
    core::Result<std::vector<std::pair<std::string, core::Bytes>>> list_data(
        const std::string&) override {
        return std::vector<std::pair<std::string, core::Bytes>>{};
    }
    void reload_view() override {}

  private:
    static core::Error refused() {
        return core::make_error(core::ErrorKind::hsm_unavailable, "test.no_keys", "no keys here");
    }
};

// A key manager on NoKeys.
inline std::unique_ptr<keys::KeyManager> key_manager_without_keys() {
    auto km = keys::KeyManager::create(std::make_shared<NoKeys>(),
                                       [](const crypto::PublicKey&) { return std::string(); });
    return km ? std::move(*km) : nullptr;
}

class NoPseudonyms final : public audit::Pseudonymizer {
  public:
    core::Result<crypto::Sha256Digest> hmac_sha256(core::ByteView) override {
        return core::make_error(core::ErrorKind::hsm_unavailable, "test.no_pseudonym_key",
                                "no pseudonym key here");
    }
};

// Pseudonyms without a key: the SHA-256 of the input (a test has no secret to keep).
class DigestPseudonyms final : public audit::Pseudonymizer {
  public:
    core::Result<crypto::Sha256Digest> hmac_sha256(core::ByteView data) override {
        return crypto::sha256(data);
    }
};

class InlineExecutor final : public Executor {
  public:
    bool post(std::function<void()> job) override {
        job();
        return true;
    }
};

// The in-memory dependencies of a service; wire() points a Dependencies at them.
struct Stand {
    MemoryRequestStore requests;
    std::unique_ptr<keys::KeyManager> keys = key_manager_without_keys();
    NoPseudonyms pseudonymizer;
    InlineExecutor executor;
    void wire(Dependencies& d) {
        d.requests = &requests;
        d.keys = keys.get();
        d.pseudonymizer = &pseudonymizer;
        d.executor = &executor;
    }
};

// A real audit log in a temporary directory, its checkpoints signed by an Ed25519 key in
// memory; `log` is empty (and `error` says why) when it did not open. Closed on destruction.
struct TestLog {
    explicit TestLog(audit::LogOptions o = {}, audit::CheckpointAnchor* anchor = nullptr) {
        o.dir = dir.path() / "audit";
        o.origin = "test.example/audit/unit";
        o.key_name = o.origin;
        auto opened = audit::AuditLog::open(o, {signer.get(), anchor});
        if (opened) {
            log = std::move(*opened);
        } else {
            error = opened.error().to_string();
        }
    }
    ~TestLog() {
        if (log) (void)log->close();
    }
    TestLog(const TestLog&) = delete;
    TestLog& operator=(const TestLog&) = delete;

    licentra::test::TempDir dir;
    std::unique_ptr<licentra::test::OpensslSigner> signer =
        licentra::test::OpensslSigner::generate(crypto::Algorithm::EdDSA);
    std::unique_ptr<audit::AuditLog> log;
    std::string error;
};

// A journal in front of a real log that fails the n-th append from now on (synchronous or
// not) with a chosen error, or reads as unhealthy; every other call goes to the log.
class FailingJournal final : public audit::Journal {
  public:
    explicit FailingJournal(audit::Journal& log) : log_(log) {}

    void fail_append(int nth, core::Error error) {
        std::lock_guard lock(mu_);
        fail_at_ = appends_ + nth;
        error_ = std::move(error);
    }
    std::atomic<bool> unhealthy{false};
    [[nodiscard]] int appends() const {
        std::lock_guard lock(mu_);
        return appends_;
    }

    core::Result<audit::Appended> append(audit::Entry entry) override {
        if (auto e = next()) return *e;
        return log_.append(std::move(entry));
    }
    void append_async(audit::Entry entry, AppendCallback done) override {
        if (auto e = next()) return done(*e);
        log_.append_async(std::move(entry), std::move(done));
    }
    bool healthy() const noexcept override { return !unhealthy.load() && log_.healthy(); }
    std::uint64_t size() const override { return log_.size(); }
    std::uint64_t checkpoint_size() const override { return log_.checkpoint_size(); }
    core::Result<audit::Hash> root(std::uint64_t size) const override { return log_.root(size); }
    core::Result<audit::Hash> leaf(std::uint64_t index) const override { return log_.leaf(index); }
    std::string latest_checkpoint() const override { return log_.latest_checkpoint(); }
    core::Result<std::vector<audit::Hash>> inclusion_proof(std::uint64_t index,
                                                           std::uint64_t size) const override {
        return log_.inclusion_proof(index, size);
    }
    core::Result<std::vector<audit::Hash>> consistency_proof(std::uint64_t first,
                                                             std::uint64_t second) const override {
        return log_.consistency_proof(first, second);
    }
    core::Result<std::vector<std::string>> read_entries(std::uint64_t start,
                                                        std::uint64_t end) const override {
        return log_.read_entries(start, end);
    }
    bool pruned(std::uint64_t index) const override { return log_.pruned(index); }
    const audit::NoteVerifier& verifier() const noexcept override { return log_.verifier(); }

  private:
    std::optional<core::Error> next() {
        std::lock_guard lock(mu_);
        if (++appends_ != fail_at_) return std::nullopt;
        return error_;
    }

    audit::Journal& log_;
    mutable std::mutex mu_;
    int appends_ = 0;
    int fail_at_ = 0;
    core::Error error_;
};

}  // namespace licentra::service::fake
