// What tells one version of a control file from another, for the fault-injecting libraries
// (libp11fault.so, libfsfault.so) that re-read their control file while the host runs. Header
// only and libc only: those libraries link nothing of the project.
#pragma once

#include <sys/stat.h>
#include <time.h>

#include <cstdint>
#include <string>

namespace licentra::test::preload {

inline std::int64_t nanos(const timespec& t) {
    return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

struct FileVersion {
    bool exists = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    std::int64_t mtime_ns = 0;
    std::int64_t ctime_ns = 0;
    bool operator==(const FileVersion&) const = default;
};

// The file's identity and times now; exists = false when it cannot be stat(2)ed.
inline FileVersion file_version(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return {};
    return {true, st.st_dev, st.st_ino, st.st_size, nanos(st.st_mtim), nanos(st.st_ctim)};
}

}  // namespace licentra::test::preload
