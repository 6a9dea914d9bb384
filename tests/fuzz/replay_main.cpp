// Replays a saved libFuzzer corpus as an ordinary test: every file under the given
// directories is fed to LLVMFuzzerTestOneInput once. A crash, sanitizer report or abort fails
// the test; an empty or missing corpus fails too, so a replay can never pass vacuously.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
    std::size_t count = 0;
    for (int i = 1; i < argc; ++i) {
        std::error_code ec;
        for (const auto& entry : std::filesystem::recursive_directory_iterator(argv[i], ec)) {
            if (!entry.is_regular_file()) continue;
            std::ifstream in(entry.path(), std::ios::binary);
            std::vector<char> buf((std::istreambuf_iterator<char>(in)), {});
            LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(buf.data()), buf.size());
            ++count;
        }
        if (ec) {
            std::fprintf(stderr, "cannot read corpus %s: %s\n", argv[i], ec.message().c_str());
            return 1;
        }
    }
    if (count == 0) {
        std::fprintf(stderr, "no corpus files replayed\n");
        return 1;
    }
    std::printf("replayed %zu corpus files\n", count);
    return 0;
}
