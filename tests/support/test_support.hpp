// Shared test helpers.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace licentra::test {

// True when running under CI (CI=true): missing tools then fail tests instead of skipping.
bool under_ci();

// A fresh private directory, removed at destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

// Absolute path of an executable on PATH, or empty.
std::string find_program(const std::string& name);

// Runs argv (no shell), captures stdout+stderr into output, returns the exit status
// (or -1 if it could not run). stdin is /dev/null unless input is given.
int run_command(const std::vector<std::string>& argv, std::string* output,
                const std::string* input = nullptr);

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, const std::string& content, int mode = 0600);

// Path of the shared test vectors (../shared/test-vectors beside the checkout).
std::filesystem::path test_vectors_dir();

}  // namespace licentra::test

// Requires an external tool. Under CI=true a missing tool is a test failure; elsewhere too,
// because scripts/setup installs every tool the tests use: a missing tool is a broken setup.
#define LICENTRA_REQUIRE_PROGRAM(var, name)                       \
    const std::string var = ::licentra::test::find_program(name); \
    ASSERT_FALSE(var.empty()) << "required program '" << name     \
                              << "' is not installed; run scripts/setup"
