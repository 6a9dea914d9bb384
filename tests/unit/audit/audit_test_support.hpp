// In-process stand-ins for the HSM-backed pieces of the audit log, for unit tests: an OpenSSL
// Ed25519 signer, in-memory and file anchors, an OpenSSL HMAC pseudonymizer, and a FileOps
// that fails on demand.
#pragma once

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "audit/anchor.hpp"
#include "audit/entry.hpp"
#include "audit/file_ops.hpp"
#include "audit/log.hpp"
#include "crypto/ossl.hpp"
#include "crypto/public_key.hpp"
#include "crypto/signer.hpp"

namespace licentra::audit::testing {

// Polls cond every 5 ms for at most bound: waits on an observable condition, not a guess.
template <class Cond>
bool eventually(Cond cond, std::chrono::milliseconds bound = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + bound;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

// Waits until the newest checkpoint of log covers exactly `size` entries. The checkpoint thread
// signs after the appends were answered: a test that needs checkpoints at exact sizes waits for
// each before it appends more.
inline bool checkpoint_reaches(const AuditLog& log, std::uint64_t size) {
    return eventually([&] { return log.checkpoint_size() == size; });
}

class OsslEd25519Signer final : public crypto::Signer {
  public:
    explicit OsslEd25519Signer(const core::Bytes& seed)
        : key_(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size())),
          public_key_(make_public(key_.get())) {}
    OsslEd25519Signer() : OsslEd25519Signer(core::Bytes(32, 0x42)) {}

    crypto::Algorithm algorithm() const override { return crypto::Algorithm::EdDSA; }
    const crypto::PublicKey& public_key() const override { return public_key_; }
    core::Result<core::Bytes> sign(core::ByteView message) override {
        ++calls;
        if (hold.load()) {
            ++held;
            held.notify_all();
            while (hold.load()) hold.wait(true);
        }
        if (fail) return core::make_error(core::ErrorKind::hsm_unavailable, "test.sign_failed");
        crypto::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
        std::size_t len = 64;
        core::Bytes sig(64);
        if (EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
            EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1) {
            return core::make_error(core::ErrorKind::internal, "test.sign");
        }
        return sig;
    }
    // Lets every signature that starts while hold is set wait (a hung HSM) until release().
    void release() {
        hold.store(false);
        hold.notify_all();
    }
    std::atomic<int> calls{0};
    std::atomic<bool> fail{false};
    std::atomic<bool> hold{false};
    std::atomic<int> held{0};  // signatures that waited

  private:
    static crypto::PublicKey make_public(EVP_PKEY* key) {
        core::Bytes raw(32);
        std::size_t len = raw.size();
        EVP_PKEY_get_raw_public_key(key, raw.data(), &len);
        return std::move(crypto::PublicKey::from_ed25519(raw)).value();
    }
    crypto::EvpPkeyPtr key_;
    crypto::PublicKey public_key_;
};

class MemoryAnchor final : public CheckpointAnchor {
  public:
    core::Result<std::optional<std::string>> load() override {
        std::lock_guard lk(mu_);
        return note_;
    }
    core::Status store(std::string_view note) override {
        std::lock_guard lk(mu_);
        ++stores;
        note_ = std::string(note);
        return core::ok_status();
    }
    std::optional<std::string> note() const {
        std::lock_guard lk(mu_);
        return note_;
    }
    void set(std::optional<std::string> n) {
        std::lock_guard lk(mu_);
        note_ = std::move(n);
    }
    int stores = 0;

  private:
    mutable std::mutex mu_;
    std::optional<std::string> note_;
};

// Survives a SIGKILL: written to a temporary file and renamed over the old one.
class FileAnchor final : public CheckpointAnchor {
  public:
    explicit FileAnchor(std::filesystem::path path) : path_(std::move(path)) {}
    core::Result<std::optional<std::string>> load() override {
        std::ifstream in(path_, std::ios::binary);
        if (!in) return std::optional<std::string>{};
        std::ostringstream ss;
        ss << in.rdbuf();
        return std::optional<std::string>(ss.str());
    }
    core::Status store(std::string_view note) override {
        const auto tmp = path_.string() + ".tmp";
        {
            std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
            out << note;
        }
        std::filesystem::rename(tmp, path_);
        return core::ok_status();
    }

  private:
    std::filesystem::path path_;
};

class OsslHmacPseudonymizer final : public Pseudonymizer {
  public:
    explicit OsslHmacPseudonymizer(std::string key) : key_(std::move(key)) {}
    core::Result<crypto::Sha256Digest> hmac_sha256(core::ByteView data) override {
        crypto::Sha256Digest out{};
        unsigned int len = 0;
        if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), data.data(), data.size(),
                 out.data(), &len) == nullptr) {
            return core::make_error(core::ErrorKind::internal, "test.hmac");
        }
        return out;
    }

  private:
    std::string key_;
};

// Passes calls through until armed; then the write that crosses the byte budget writes only up
// to the budget (a short write) and the next one fails with errno_value, like a full disk.
class FailingFileOps final : public FileOps {
  public:
    ssize_t write(int fd, const void* data, std::size_t size) override {
        if (!armed.load()) return ::write(fd, data, size);
        const long left = budget.load();
        if (left <= 0) {
            errno = errno_value;
            return -1;
        }
        const std::size_t n = std::min<std::size_t>(size, static_cast<std::size_t>(left));
        const ssize_t w = ::write(fd, data, n);
        if (w > 0) budget -= w;
        return w;
    }
    int fdatasync(int fd) override {
        if (fail_sync.load()) {
            errno = EIO;
            return -1;
        }
        return ::fdatasync(fd);
    }
    std::atomic<bool> armed{false};
    std::atomic<long> budget{0};
    std::atomic<bool> fail_sync{false};
    int errno_value = ENOSPC;
};

// The lines of a file without their '\n', and back.
inline std::vector<std::string> read_lines(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string data = ss.str();
    std::vector<std::string> lines;
    std::size_t pos = 0;
    while (pos < data.size()) {
        const auto nl = data.find('\n', pos);
        lines.push_back(data.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return lines;
}

inline void write_lines(const std::filesystem::path& file, const std::vector<std::string>& lines) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    for (const auto& l : lines) out << l << '\n';
}

inline Entry sample_entry(std::uint64_t n, std::string principal = "license-server-eu") {
    Entry e;
    e.principal = std::move(principal);
    e.action = "token.sign";
    e.result = Outcome::allowed;
    e.key = "acme-prod";
    e.kid = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    e.version = 3;
    e.request_id = "req-" + std::to_string(n);
    e.token_sha256 = std::string(64, 'a');
    e.claims = std::vector<std::string>{"exp", "features", "seats", "sub"};
    return e;
}

inline LogOptions test_options(const std::filesystem::path& dir) {
    LogOptions o;
    o.dir = dir;
    o.origin = "licentra.example/audit/node-1";
    o.key_name = "licentra.example/audit";
    return o;
}

}  // namespace licentra::audit::testing
