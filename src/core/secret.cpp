#include "core/secret.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace licentra::core {

SecretBytes::SecretBytes(ByteView data) : data_(data.begin(), data.end()) {}

SecretBytes::~SecretBytes() { clear(); }

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : data_(std::move(other.data_)) {
    other.data_.clear();
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
        clear();
        data_ = std::move(other.data_);
        other.data_.clear();
    }
    return *this;
}

bool SecretBytes::equals(ByteView other) const noexcept {
    if (other.size() != data_.size()) return false;
    if (data_.empty()) return true;
    return CRYPTO_memcmp(data_.data(), other.data(), data_.size()) == 0;
}

void SecretBytes::clear() noexcept {
    if (!data_.empty()) OPENSSL_cleanse(data_.data(), data_.size());
    data_.clear();
}

Result<SecretBytes> read_secret_file(const std::filesystem::path& path, std::size_t max_size) {
    const std::string name = path.string();
    int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return make_error(ErrorKind::usage, "secret.unreadable",
                          "cannot open secret file " + name + ": " + std::strerror(errno));
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        return make_error(ErrorKind::usage, "secret.not_regular",
                          "secret file " + name + " is not a regular file");
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        return make_error(ErrorKind::usage, "secret.permissions",
                          "secret file " + name +
                              " is accessible by group or others; it must be mode 0600 or 0400");
    }
    if (st.st_size <= 0 || static_cast<std::size_t>(st.st_size) > max_size) {
        return make_error(ErrorKind::usage, "secret.size",
                          "secret file " + name + " is empty or too large");
    }
    std::vector<std::uint8_t> buf(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < buf.size()) {
        ssize_t n = ::read(fd, buf.data() + got, buf.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    std::size_t len = got;
    if (len > 0 && buf[len - 1] == '\n') --len;
    if (len > 0 && buf[len - 1] == '\r') --len;
    SecretBytes secret(ByteView(buf.data(), len));
    OPENSSL_cleanse(buf.data(), buf.size());
    if (secret.empty()) {
        return make_error(ErrorKind::usage, "secret.size", "secret file " + name + " is empty");
    }
    return secret;
}

}  // namespace licentra::core
