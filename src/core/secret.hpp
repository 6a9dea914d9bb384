// SecretBytes: a move-only buffer for PINs and other secrets. Wiped with OPENSSL_cleanse on
// destruction and on move; never printed; compared in constant time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "core/bytes.hpp"
#include "core/result.hpp"

namespace licentra::core {

class SecretBytes {
  public:
    SecretBytes() = default;
    explicit SecretBytes(ByteView data);
    ~SecretBytes();

    SecretBytes(const SecretBytes&) = delete;
    SecretBytes& operator=(const SecretBytes&) = delete;
    SecretBytes(SecretBytes&& other) noexcept;
    SecretBytes& operator=(SecretBytes&& other) noexcept;

    [[nodiscard]] ByteView view() const noexcept { return {data_.data(), data_.size()}; }
    [[nodiscard]] std::size_t size() const noexcept { return data_.size(); }
    [[nodiscard]] bool empty() const noexcept { return data_.empty(); }
    // Constant-time comparison (CRYPTO_memcmp); sizes are not secret.
    [[nodiscard]] bool equals(ByteView other) const noexcept;
    void clear() noexcept;

  private:
    std::vector<std::uint8_t> data_;
};

// Reads a secret (a PIN) from a file. Refuses a file that is not a regular file, or that is
// readable or writable by group or others (mode must be 0600 or stricter), or is empty or
// larger than max_size. One trailing "\n" or "\r\n" is removed. Errors never contain content.
[[nodiscard]] Result<SecretBytes> read_secret_file(const std::filesystem::path& path,
                                                   std::size_t max_size = 4096);

}  // namespace licentra::core
