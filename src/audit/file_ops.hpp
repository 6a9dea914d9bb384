// The system calls the writer depends on for durability, behind an interface so tests can
// inject failures (ENOSPC, EIO, short writes) exactly where the writer would meet them.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace licentra::audit {

class FileOps {
  public:
    virtual ~FileOps() = default;
    // Same contract as write(2): bytes written (possibly fewer than size) or -1 with errno.
    virtual ssize_t write(int fd, const void* data, std::size_t size) = 0;
    // Same contract as fdatasync(2).
    virtual int fdatasync(int fd) = 0;
    // Same contract as fsync(2); used for the directory when a new segment is created.
    virtual int fsync(int fd);
};

// The real system calls. Thread-safe; lives for the whole program.
[[nodiscard]] FileOps& posix_file_ops() noexcept;

}  // namespace licentra::audit
