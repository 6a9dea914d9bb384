// The `licentra` command line run as a separate process: every command's --help, --version,
// usage errors, file errors, and the client profile file below the environment and the flags.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "support/test_support.hpp"
#include "support/tls_certs.hpp"

namespace licentra {
namespace {

namespace fs = std::filesystem;

const std::string kLicentra = LICENTRA_BINARY_DIR "/src/app/licentra";

// Every command and subcommand of `licentra`.
const std::vector<std::vector<std::string>> kCommands = {
    {},
    {"audit"},
    {"audit", "verify"},
    {"audit", "checkpoint"},
    {"audit", "prove-inclusion"},
    {"audit", "prove-consistency"},
    {"audit", "anchor"},
    {"audit", "prune"},
    {"audit", "retention"},
    {"policy"},
    {"policy", "check"},
    {"token"},
    {"token", "sign"},
    {"token", "verify"},
    {"jwks"},
    {"keys"},
    {"keys", "list"},
    {"keys", "show"},
    {"keys", "rotate"},
    {"keys", "retire"},
    {"keys", "destroy"},
    {"requests"},
    {"requests", "list"},
    {"requests", "show"},
    {"requests", "approve"},
    {"requests", "reject"},
    {"hsm"},
    {"hsm", "keys"},
    {"hsm", "generate"},
};

std::string joined(const std::vector<std::string>& words) {
    std::string out = "licentra";
    for (const auto& w : words) out += " " + w;
    return out;
}

// Runs licentra with exactly the given environment (env -i).
int run(const std::vector<std::string>& env, std::vector<std::string> args, std::string* out) {
    std::vector<std::string> argv = {"env", "-i"};
    argv.insert(argv.end(), env.begin(), env.end());
    argv.push_back(kLicentra);
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run_command(argv, out);
}

// A TCP port on 127.0.0.1 where nothing listens (bound once, then released).
int unused_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    ::close(fd);
    return ntohs(addr.sin_port);
}

class LicentraCli : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_TRUE(fs::exists(kLicentra)) << kLicentra; }
    std::vector<std::string> base_env() const {
        return {"HOME=" + (tmp_.path() / "home").string(),
                "XDG_CONFIG_HOME=" + config_home().string()};
    }
    fs::path config_home() const { return tmp_.path() / "xdg"; }
    fs::path profile_file() const { return config_home() / "licentra" / "config.yaml"; }
    void write_profile(const std::string& text) {
        fs::create_directories(profile_file().parent_path());
        test::write_file(profile_file(), text);
    }

    test::TempDir tmp_;
};

TEST_F(LicentraCli, EveryCommandHasItsOwnHelp) {
    for (const auto& cmd : kCommands) {
        std::vector<std::string> args = cmd;
        args.push_back("--help");
        std::string out;
        EXPECT_EQ(run(base_env(), args, &out), 0) << joined(cmd) << "\n" << out;
        const std::string usage = "Usage: " + joined(cmd) + " ";
        EXPECT_NE(out.find(usage), std::string::npos) << usage << "\n" << out;
        // -h too.
        args.back() = "-h";
        EXPECT_EQ(run(base_env(), args, &out), 0) << joined(cmd) << " -h\n" << out;
        EXPECT_NE(out.find(usage), std::string::npos) << usage << "\n" << out;
    }
}

TEST_F(LicentraCli, EveryCommandListedInItsGroupIsTested) {
    // The groups' help lists exactly the subcommands kCommands knows.
    for (const auto& cmd : kCommands) {
        std::vector<std::string> args = cmd;
        args.push_back("--help");
        std::string out;
        ASSERT_EQ(run(base_env(), args, &out), 0);
        const auto at = out.find("Subcommands:\n");
        if (at == std::string::npos) continue;
        std::istringstream lines(out.substr(at + 13));
        std::string line;
        while (std::getline(lines, line) && line.rfind("  ", 0) == 0) {
            std::istringstream words(line);
            std::string name;
            words >> name;
            std::vector<std::string> sub = cmd;
            sub.push_back(name);
            EXPECT_NE(std::find(kCommands.begin(), kCommands.end(), sub), kCommands.end())
                << joined(sub) << " is not covered by this test";
        }
    }
}

TEST_F(LicentraCli, VersionPrintsTheVersionLine) {
    std::string out;
    ASSERT_EQ(run(base_env(), {"--version"}, &out), 0) << out;
    EXPECT_TRUE(std::regex_match(out, std::regex("licentra [0-9]+\\.[0-9]+\\.[0-9]+ \\(git "
                                                 "[0-9a-z]+\\)\n")))
        << out;
}

TEST_F(LicentraCli, BadCommandLinesExitTwo) {
    const std::vector<std::vector<std::string>> bad = {
        {},
        {"nosuch"},
        {"keys"},
        {"keys", "list", "--bogus"},
        {"keys", "list", "extra"},
        {"keys", "show"},
        {"keys", "retire", "k"},
        {"keys", "retire", "k", "--version", "0"},
        {"keys", "destroy", "k", "--version", "x"},
        {"token", "sign", "--claims", "-"},
        {"token", "verify", "t"},
        {"audit", "checkpoint"},
        {"audit", "checkpoint", "--dir", "a", "--dir", "b"},
        {"audit", "prove-inclusion", "--dir", "a", "--index", "-1"},
        {"audit", "prune", "--dir", "a", "--key", "k", "--before", "last-year"},
        {"audit", "retention", "--uri", "pkcs11:token=x"},
        {"policy", "check"},
        {"hsm", "generate", "--uri", "pkcs11:token=x", "--name", "n", "--version", "1", "--alg",
         "RS1"},
        {"requests", "approve"},
        {"jwks", "--server"},
    };
    for (const auto& args : bad) {
        std::string out;
        EXPECT_EQ(run(base_env(), args, &out), 2) << joined(args) << "\n" << out;
        EXPECT_FALSE(out.empty()) << joined(args);
    }
    std::string out;
    run(base_env(), {"keys", "list", "--bogus"}, &out);
    EXPECT_NE(out.find("licentra keys list: "), std::string::npos) << out;
    EXPECT_NE(out.find("--bogus"), std::string::npos) << out;
    run(base_env(), {"audit", "checkpoint", "--dir", "a", "--dir", "b"}, &out);
    EXPECT_NE(out.find("--dir is given more than once"), std::string::npos) << out;
}

TEST_F(LicentraCli, AMissingFileIsNamedWithTheOsError) {
    const std::string missing = (tmp_.path() / "nope" / "x.pem").string();
    const std::string expected = "licentra: cannot read " + missing + ": No such file or directory";
    fs::create_directories(tmp_.path() / "pki");
    test::TestPki pki(tmp_.path() / "pki");
    const auto client = pki.client("officer", "officer");
    const std::vector<std::vector<std::string>> cases = {
        {"policy", "check", missing},
        {"token", "verify", missing, "--jwks", missing},
        {"token", "sign", "--key", "k", "--claims", missing},
        {"jwks", "--cert", missing, "--key", client.key.string(), "--ca", pki.ca_file().string()},
        {"keys", "list", "--cert", client.cert.string(), "--key", missing, "--ca",
         pki.ca_file().string()},
        {"requests", "list", "--cert", client.cert.string(), "--key", client.key.string(), "--ca",
         missing},
        {"hsm", "keys", "--uri", "pkcs11:token=x", "--module", missing},
    };
    for (const auto& args : cases) {
        std::string out;
        EXPECT_EQ(run(base_env(), args, &out), 8) << joined(args) << "\n" << out;
        EXPECT_NE(out.find(expected), std::string::npos) << joined(args) << "\n" << out;
    }
    // A profile named explicitly needs its file.
    std::string out;
    EXPECT_EQ(run(base_env(), {"jwks", "--profile", "prod"}, &out), 8) << out;
    EXPECT_NE(out.find("cannot read " + profile_file().string() + ": No such file or directory"),
              std::string::npos)
        << out;
}

TEST_F(LicentraCli, ProfileFileThenEnvironmentThenFlags) {
    fs::create_directories(config_home() / "licentra" / "pki");
    test::TestPki pki(config_home() / "licentra" / "pki");
    pki.client("officer", "officer");
    const int file_port = unused_port();
    const int prod_port = unused_port();
    const int env_port = unused_port();
    const int flag_port = unused_port();
    auto url = [](int port) { return "https://127.0.0.1:" + std::to_string(port); };
    // Relative paths resolve against the profile file's directory.
    write_profile(
        "profiles:\n"
        "  default:\n"
        "    server: " +
        url(file_port) +
        "\n"
        "    cert: pki/officer.crt.pem\n"
        "    key: pki/officer.key.pem\n"
        "    ca: pki/ca.pem\n"
        "  prod:\n"
        "    server: " +
        url(prod_port) +
        "\n"
        "    cert: pki/officer.crt.pem\n"
        "    key: pki/officer.key.pem\n"
        "    ca: pki/ca.pem\n");
    auto expect_server = [&](const std::vector<std::string>& env,
                             const std::vector<std::string>& args, int port) {
        std::string out;
        EXPECT_EQ(run(env, args, &out), 5) << out;
        EXPECT_NE(out.find("licentra: " + url(port) + ": "), std::string::npos)
            << "expected " << url(port) << "\n"
            << out;
    };
    auto env = base_env();
    // The profile "default" when none is named.
    expect_server(env, {"jwks"}, file_port);
    expect_server(env, {"keys", "list", "--json"}, file_port);
    // A named profile: --profile, or LICENTRA_PROFILE; the flag wins over the variable.
    expect_server(env, {"requests", "list", "--profile", "prod"}, prod_port);
    auto env_profile = env;
    env_profile.push_back("LICENTRA_PROFILE=prod");
    expect_server(env_profile, {"jwks"}, prod_port);
    expect_server(env_profile, {"jwks", "--profile", "default"}, file_port);
    // The environment over the file.
    auto env_server = env;
    env_server.push_back("LICENTRA_SERVER=" + url(env_port));
    expect_server(env_server, {"jwks"}, env_port);
    const std::string claims = (tmp_.path() / "claims.json").string();
    test::write_file(claims, "{\"sub\": \"acme\"}");
    expect_server(env_server, {"token", "sign", "--key", "k", "--claims", claims}, env_port);
    // Flags over both.
    expect_server(env_server, {"jwks", "--server", url(flag_port)}, flag_port);
    expect_server(env, {"jwks", "--server", url(flag_port)}, flag_port);
    // A client file from the environment over the profile's.
    auto env_cert = env;
    const std::string missing = (tmp_.path() / "missing.pem").string();
    env_cert.push_back("LICENTRA_CERT=" + missing);
    std::string out;
    EXPECT_EQ(run(env_cert, {"jwks"}, &out), 8) << out;
    EXPECT_NE(out.find("cannot read " + missing), std::string::npos) << out;
    // ... and a flag over the environment.
    expect_server(env_cert,
                  {"jwks", "--cert", (config_home() / "licentra/pki/officer.crt.pem").string()},
                  file_port);
}

TEST_F(LicentraCli, WithoutAProfileFileTheDefaultsApply) {
    fs::create_directories(tmp_.path() / "pki");
    test::TestPki pki(tmp_.path() / "pki");
    const auto client = pki.client("officer", "officer");
    std::string out;
    // No file and no profile named: nothing is required of the file.
    EXPECT_EQ(
        run(base_env(),
            {"jwks", "--server", "https://127.0.0.1:" + std::to_string(unused_port()), "--cert",
             client.cert.string(), "--key", client.key.string(), "--ca", pki.ca_file().string()},
            &out),
        5)
        << out;
    // Nothing to connect with: a usage error naming what is missing.
    EXPECT_EQ(run(base_env(), {"jwks"}, &out), 2) << out;
    EXPECT_NE(out.find("--cert"), std::string::npos) << out;
}

TEST_F(LicentraCli, AMalformedProfileFileNamesFileLineAndKey) {
    const std::string file = profile_file().string();
    struct Case {
        std::string text;
        std::string expected;
        std::vector<std::string> args = {"jwks"};
    };
    const std::vector<Case> cases = {
        {"profiles:\n  default:\n    server: https://x\n    sever: https://y\n",
         file + ":4:5: profiles.default.sever: unknown key"},
        {"profile:\n  default: {}\n", file + ":1:1: profile: unknown key"},
        {"profiles:\n  default:\n    server: [a, b]\n",
         file + ":3:13: profiles.default.server: must be a non-empty string"},
        {"profiles:\n  default: 7\n", file + ":2:12: profiles.default: must be a map"},
        {"profiles:\n  a:\n    server: [1\n", file + ":4:1: "},
        {"profiles:\n  default:\n    server: https://x\n",
         file + ":1:1: profiles.prod: no such profile (the file has default)",
         {"jwks", "--profile", "prod"}},
    };
    for (const auto& c : cases) {
        write_profile(c.text);
        std::string out;
        EXPECT_EQ(run(base_env(), c.args, &out), 8) << c.text << out;
        EXPECT_NE(out.find("licentra: " + c.expected), std::string::npos)
            << c.text << "expected: " << c.expected << "\n"
            << out;
    }
}

}  // namespace
}  // namespace licentra
