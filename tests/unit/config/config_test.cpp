#include "config/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "audit/checkpoint.hpp"
#include "support/test_support.hpp"

namespace licentra::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A directory with every file a valid configuration names, and config.yaml beside them.
class ConfigFiles : public ::testing::Test {
  protected:
    void SetUp() override {
        root_ = dir_.path();
        fs::create_directories(root_ / "tls");
        fs::create_directories(root_ / "hsm");
        fs::create_directories(root_ / "policy");
        for (const char* f :
             {"tls/server.crt", "tls/server.key", "tls/ca.crt", "policy/p.yaml", "module.so"}) {
            test::write_file(root_ / f, "x", 0644);
        }
        test::write_file(root_ / "hsm/user.pin", "1234\n", 0600);
    }

    std::string valid_yaml() const {
        return "listen:\n"
               "  address: 0.0.0.0\n"
               "  port: 18443\n"
               "tls:\n"
               "  cert: tls/server.crt\n"
               "  key: tls/server.key\n"
               "  client_ca: tls/ca.crt\n"
               "operations:\n"
               "  address: \"::1\"\n"
               "  port: 19090\n"
               "hsm:\n"
               "  module: module.so\n"
               "  token_uri: \"pkcs11:token=licentra?pin-source=file:hsm/user.pin\"\n"
               "  session_pool: 6\n"
               "policy:\n"
               "  path: policy/p.yaml\n"
               "audit:\n"
               "  dir: audit\n"
               "  origin: example.test/signd-1\n"
               "  checkpoint:\n"
               "    every_entries: 500\n"
               "    interval: 30s\n"
               "  segment_bytes: 1048576\n"
               "server:\n"
               "  worker_threads: 3\n"
               "  hsm_threads: 5\n"
               "limits:\n"
               "  max_header_bytes: 4096\n"
               "  max_body_bytes: 32768\n"
               "  read_timeout: 1500ms\n"
               "  idle_timeout: 2m\n"
               "  handshake_timeout: 3s\n"
               "  max_connections: 100\n"
               "  max_requests_in_flight_per_connection: 2\n"
               "log:\n"
               "  level: debug\n";
    }

    // Minimal: only the required sections.
    std::string minimal_yaml() const {
        return "tls:\n"
               "  cert: tls/server.crt\n"
               "  key: tls/server.key\n"
               "  client_ca: tls/ca.crt\n"
               "hsm:\n"
               "  module: module.so\n"
               "  token_uri: \"pkcs11:token=t?pin-source=file:hsm/user.pin\"\n"
               "policy:\n"
               "  path: policy/p.yaml\n"
               "audit:\n"
               "  dir: audit\n"
               "  origin: o\n";
    }

    LoadResult load(const std::string& yaml) {
        test::write_file(root_ / "config.yaml", yaml, 0644);
        return load_config(root_ / "config.yaml");
    }

    static std::vector<std::string> texts(const std::vector<Diagnostic>& d) {
        std::vector<std::string> out;
        for (const auto& x : d) out.push_back(x.to_string());
        return out;
    }

    static const Diagnostic* find(const std::vector<Diagnostic>& d, const std::string& key) {
        for (const auto& x : d) {
            if (x.key_path == key) return &x;
        }
        return nullptr;
    }

    test::TempDir dir_;
    fs::path root_;
};

std::string dump(const std::vector<Diagnostic>& d) {
    std::string s;
    for (const auto& x : d) s += x.to_string() + "\n";
    return s;
}

TEST_F(ConfigFiles, LoadsEveryKeyAndResolvesRelativePathsAgainstTheFileDirectory) {
    auto r = load(valid_yaml());
    ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
    const Config& c = r.config;
    EXPECT_EQ(c.listen.address, "0.0.0.0");
    EXPECT_EQ(c.listen.port, 18443);
    EXPECT_EQ(c.operations.address, "::1");
    EXPECT_EQ(c.operations.port, 19090);
    EXPECT_EQ(c.tls.cert, root_ / "tls/server.crt");
    EXPECT_EQ(c.tls.key, root_ / "tls/server.key");
    EXPECT_EQ(c.tls.client_ca, root_ / "tls/ca.crt");
    EXPECT_EQ(c.hsm.module, root_ / "module.so");
    EXPECT_EQ(c.hsm.token_uri, "pkcs11:token=licentra?pin-source=file:hsm/user.pin");
    EXPECT_EQ(c.hsm.pin_file, root_ / "hsm/user.pin");
    EXPECT_EQ(c.hsm.session_pool, 6u);
    EXPECT_EQ(c.policy.path, root_ / "policy/p.yaml");
    EXPECT_EQ(c.audit.dir, root_ / "audit");
    EXPECT_EQ(c.audit.origin, "example.test/signd-1");
    EXPECT_EQ(c.audit.checkpoint_every_entries, 500u);
    EXPECT_EQ(c.audit.checkpoint_interval, 30s);
    EXPECT_EQ(c.audit.segment_bytes, 1048576u);
    EXPECT_EQ(c.server.worker_threads, 3u);
    EXPECT_EQ(c.server.hsm_threads, 5u);
    EXPECT_EQ(c.limits.max_header_bytes, 4096u);
    EXPECT_EQ(c.limits.max_body_bytes, 32768u);
    EXPECT_EQ(c.limits.read_timeout, 1500ms);
    EXPECT_EQ(c.limits.idle_timeout, 2min);
    EXPECT_EQ(c.limits.handshake_timeout, 3s);
    EXPECT_EQ(c.limits.max_connections, 100u);
    EXPECT_EQ(c.limits.max_requests_in_flight_per_connection, 2u);
    EXPECT_EQ(c.log.level, LogLevel::debug);
    EXPECT_EQ(c.locations.at("listen.port").line, 3);
    EXPECT_EQ(c.locations.at("listen.port").column, 9);
    EXPECT_TRUE(validate_config(c).empty()) << dump(validate_config(c));
}

TEST_F(ConfigFiles, OptionalKeysTakeTheirDocumentedDefaults) {
    auto r = load(minimal_yaml());
    ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
    const Config& c = r.config;
    EXPECT_EQ(c.listen.address, "127.0.0.1");
    EXPECT_EQ(c.listen.port, 8443);
    EXPECT_EQ(c.operations.address, "127.0.0.1");
    EXPECT_EQ(c.operations.port, 9090);
    EXPECT_EQ(c.hsm.session_pool, 4u);
    EXPECT_EQ(c.server.hsm_threads, 4u);  // sized to the session pool
    EXPECT_GE(c.server.worker_threads, 1u);
    EXPECT_EQ(c.audit.checkpoint_every_entries, 1000u);
    EXPECT_EQ(c.audit.checkpoint_interval, 60s);
    EXPECT_EQ(c.audit.segment_bytes, 64u << 20);
    EXPECT_EQ(c.limits.max_header_bytes, 8192u);
    EXPECT_EQ(c.limits.max_body_bytes, 65536u);
    EXPECT_EQ(c.limits.read_timeout, 10s);
    EXPECT_EQ(c.limits.idle_timeout, 60s);
    EXPECT_EQ(c.limits.handshake_timeout, 5s);
    EXPECT_EQ(c.limits.max_connections, 4096u);
    EXPECT_EQ(c.limits.max_requests_in_flight_per_connection, 8u);
    EXPECT_EQ(c.log.level, LogLevel::info);
    EXPECT_TRUE(validate_config(c).empty()) << dump(validate_config(c));
    Config defaults;
    EXPECT_EQ(defaults.hsm.module, "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so");
}

TEST_F(ConfigFiles, UnknownKeyIsReportedWithFileLineColumnAndKeyPath) {
    std::string yaml = minimal_yaml() + "limits:\n  max_body_byte: 10\n";
    auto r = load(yaml);
    ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r.diagnostics);
    const Diagnostic& d = r.diagnostics[0];
    EXPECT_EQ(d.key_path, "limits.max_body_byte");
    EXPECT_EQ(d.line, 14);
    EXPECT_EQ(d.column, 3);
    EXPECT_EQ(d.to_string().rfind(
                  (root_ / "config.yaml").string() + ":14:3: limits.max_body_byte: unknown key", 0),
              0u)
        << d.to_string();
}

TEST_F(ConfigFiles, WrongTypesAreErrors) {
    std::string yaml = minimal_yaml() +
                       "listen:\n"
                       "  port: \"8443\"\n"  // quoted: a string, not an integer
                       "limits:\n"
                       "  max_connections: many\n"
                       "  read_timeout: 10\n"  // no unit
                       "  max_body_bytes: -1\n"
                       "  max_header_bytes: [1]\n"
                       "server:\n"
                       "  worker_threads: 1.5\n"
                       "tokens: issuer\n"
                       "log:\n"
                       "  level: verbose\n";
    auto r = load(yaml);
    for (const char* key :
         {"listen.port", "limits.max_connections", "limits.read_timeout", "limits.max_body_bytes",
          "limits.max_header_bytes", "server.worker_threads", "tokens", "log.level"}) {
        EXPECT_NE(find(r.diagnostics, key), nullptr) << key << "\n" << dump(r.diagnostics);
    }
    EXPECT_EQ(r.diagnostics.size(), 8u) << dump(r.diagnostics);
    EXPECT_EQ(find(r.diagnostics, "listen.port")->line, 14);
}

TEST_F(ConfigFiles, DuplicateKeysAreErrorsAtEveryLevel) {
    std::string yaml = minimal_yaml() + "audit:\n  dir: x\n";
    auto r = load(yaml);
    ASSERT_NE(find(r.diagnostics, "audit"), nullptr) << dump(r.diagnostics);
    EXPECT_EQ(find(r.diagnostics, "audit")->line, 13);
    EXPECT_NE(find(r.diagnostics, "audit")->message.find("duplicate"), std::string::npos);

    std::string nested = "listen:\n  port: 1\n  port: 2\n" + minimal_yaml();
    auto n = load(nested);
    ASSERT_NE(find(n.diagnostics, "listen.port"), nullptr) << dump(n.diagnostics);
    EXPECT_EQ(find(n.diagnostics, "listen.port")->line, 3);
}

TEST_F(ConfigFiles, MissingRequiredSectionsAndKeysAreAllReported) {
    auto r = load("listen:\n  port: 1\n");
    for (const char* key : {"tls", "hsm", "policy", "audit"}) {
        EXPECT_NE(find(r.diagnostics, key), nullptr) << key << "\n" << dump(r.diagnostics);
    }
    auto k = load("tls:\n  cert: a\nhsm:\n  module: m\npolicy: {}\naudit:\n  dir: d\n");
    for (const char* key :
         {"tls.key", "tls.client_ca", "hsm.token_uri", "policy.path", "audit.origin"}) {
        EXPECT_NE(find(k.diagnostics, key), nullptr) << key << "\n" << dump(k.diagnostics);
    }
}

TEST_F(ConfigFiles, CollectsEveryErrorInOnePass) {
    std::string yaml = minimal_yaml() +
                       "bogus: 1\n"
                       "listen:\n  port: 0\n  colour: red\n"
                       "limits:\n  idle_timeout: forever\n";
    auto r = load(yaml);
    EXPECT_EQ(r.diagnostics.size(), 4u) << dump(r.diagnostics);
}

TEST_F(ConfigFiles, SyntaxErrorsAndNonMappingsAreReportedWithLocation) {
    auto r = load("listen:\n  port: [1, 2\n");
    ASSERT_EQ(r.diagnostics.size(), 1u);
    EXPECT_GT(r.diagnostics[0].line, 0);
    EXPECT_NE(r.diagnostics[0].message.find("YAML syntax error"), std::string::npos);
    EXPECT_FALSE(load("").ok());
    EXPECT_FALSE(load("- a\n- b\n").ok());
    EXPECT_FALSE(load("a: 1\n---\nb: 2\n").ok());
    EXPECT_FALSE(load(std::string(10000, '[')).ok());
    EXPECT_FALSE(load_config(root_ / "does-not-exist.yaml").ok());
}

// YAML::LoadAll, the reader before yaml/document.hpp, looped forever on these six bytes
// (tests/fuzz/corpus/config/flow_entry_first.yaml).
TEST_F(ConfigFiles, TheInputThatHungTheYamlReaderIsRefusedAtOnceWithItsPosition) {
    const auto start = std::chrono::steady_clock::now();
    auto r = load(",[ a:!");
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
    ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r.diagnostics);
    EXPECT_EQ(r.diagnostics[0].to_string(),
              (root_ / "config.yaml").string() + ":1:1: YAML syntax error: unexpected \",\"");
    for (const char* text : {"]", "}\n", "listen: {}\n]\n"}) {
        EXPECT_FALSE(load(text).ok()) << text;
    }
}

TEST_F(ConfigFiles, AnchorsAliasesAndMergeKeysAreRefusedWithTheirLine) {
    auto anchor = load(minimal_yaml() + "limits: &shared\n  max_connections: 5\n");
    ASSERT_EQ(anchor.diagnostics.size(), 1u) << dump(anchor.diagnostics);
    EXPECT_EQ(anchor.diagnostics[0].line, 13);
    EXPECT_EQ(anchor.diagnostics[0].key_path, "limits");
    EXPECT_NE(anchor.diagnostics[0].message.find(
                  "YAML anchors (&name) are not allowed in a configuration"),
              std::string::npos)
        << dump(anchor.diagnostics);

    auto alias = load(minimal_yaml() + "log:\n  level: *verbose\n");
    ASSERT_EQ(alias.diagnostics.size(), 1u) << dump(alias.diagnostics);
    EXPECT_EQ(alias.diagnostics[0].line, 14);
    EXPECT_NE(alias.diagnostics[0].message.find(
                  "YAML aliases (*name) are not allowed in a configuration"),
              std::string::npos)
        << dump(alias.diagnostics);

    // The usual way to share settings: an anchor, then an alias (or a merge key) using it.
    auto both = load("listen: &l {port: 1}\noperations: *l\n" + minimal_yaml());
    ASSERT_FALSE(both.ok());
    EXPECT_EQ(both.diagnostics[0].line, 1) << dump(both.diagnostics);
    EXPECT_NE(both.diagnostics[0].message.find("anchors"), std::string::npos);

    auto merge = load(minimal_yaml() + "limits:\n  <<: {max_connections: 5}\n");
    ASSERT_EQ(merge.diagnostics.size(), 1u) << dump(merge.diagnostics);
    EXPECT_EQ(merge.diagnostics[0].line, 14);
    EXPECT_EQ(merge.diagnostics[0].key_path, "limits.<<");
    EXPECT_NE(merge.diagnostics[0].message.find(
                  "YAML merge keys (<<) are not allowed in a configuration"),
              std::string::npos)
        << dump(merge.diagnostics);
}

TEST_F(ConfigFiles, TagsControlCharactersAndInvalidUtf8AreRefused) {
    EXPECT_NE(dump(load(minimal_yaml() + "listen:\n  port: !!int 8443\n").diagnostics)
                  .find(":14:9: listen.port: explicit YAML tags are not allowed"),
              std::string::npos);
    EXPECT_NE(dump(load(minimal_yaml() + "log:\n  level: \x1b[31m\n").diagnostics)
                  .find(":14:10: control character U+001B is not allowed"),
              std::string::npos);
    EXPECT_NE(dump(load(minimal_yaml() + "log:\n  level: \xff\n").diagnostics)
                  .find(":14:10: invalid UTF-8"),
              std::string::npos);
}

TEST_F(ConfigFiles, TheRemovedTokensSectionIsRefusedWithWhatToDo) {
    auto r = load(minimal_yaml() + "tokens:\n  issuer: https://signer.test\n");
    ASSERT_EQ(r.diagnostics.size(), 1u) << dump(r.diagnostics);
    EXPECT_EQ(r.diagnostics[0].key_path, "tokens");
    EXPECT_NE(r.diagnostics[0].message.find("issuer of its key in the policy"), std::string::npos);
}

TEST_F(ConfigFiles, ThePinNeverLivesInTheConfiguration) {
    auto with_uri = [&](const std::string& uri) {
        std::string yaml = minimal_yaml();
        auto pos = yaml.find("pkcs11:token=t?pin-source=file:hsm/user.pin");
        yaml.replace(pos, std::string("pkcs11:token=t?pin-source=file:hsm/user.pin").size(), uri);
        return load(yaml);
    };
    auto pin_value = with_uri("pkcs11:token=t?pin-value=1234");
    ASSERT_NE(find(pin_value.diagnostics, "hsm.token_uri"), nullptr);
    EXPECT_NE(find(pin_value.diagnostics, "hsm.token_uri")->message.find("pin-value"),
              std::string::npos);
    EXPECT_EQ(dump(pin_value.diagnostics).find("1234"), std::string::npos);
    EXPECT_FALSE(with_uri("pkcs11:token=t?pin-source=file:hsm/user.pin&pin-value=1").ok());
    EXPECT_FALSE(with_uri("pkcs11:token=t").ok());  // no pin-source at all
    EXPECT_FALSE(with_uri("pkcs11:token=t?pin-source=|/bin/echo").ok());
    EXPECT_FALSE(with_uri("pkcs11:token=t?pin-source=file://host/pin").ok());
    EXPECT_FALSE(with_uri("pkcs11:token=t?pin-source=file:%zz").ok());
    EXPECT_FALSE(with_uri("token=t?pin-source=file:hsm/user.pin").ok());  // not a pkcs11: URI
    // What the daemon's token would refuse at start is refused here (one parser: p11-kit).
    EXPECT_FALSE(with_uri("pkcs11:token=t;object=k?pin-source=file:hsm/user.pin").ok());
    EXPECT_FALSE(with_uri("pkcs11:token=t;colour=red?pin-source=file:hsm/user.pin").ok());

    auto absolute =
        with_uri("pkcs11:token=t?pin-source=file://" + (root_ / "hsm/user.pin").string());
    ASSERT_TRUE(absolute.ok()) << dump(absolute.diagnostics);
    EXPECT_EQ(absolute.config.hsm.pin_file, root_ / "hsm/user.pin");
    auto encoded = with_uri("pkcs11:token=t?pin-source=file:hsm/user%2Epin");
    ASSERT_TRUE(encoded.ok()) << dump(encoded.diagnostics);
    EXPECT_EQ(encoded.config.hsm.pin_file, root_ / "hsm/user.pin");
    auto with_module = with_uri(
        "pkcs11:token=t;manufacturer=SoftHSM%20project?module-name="
        "softhsm2&pin-source=file:hsm/user.pin");
    ASSERT_TRUE(with_module.ok()) << dump(with_module.diagnostics);
    EXPECT_EQ(with_module.config.hsm.pin_file, root_ / "hsm/user.pin");
}

TEST_F(ConfigFiles, ClusterSettingsDefaultToOneSecondAndHalfASecond) {
    auto r = load(minimal_yaml());
    ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
    EXPECT_EQ(r.config.cluster.refresh_interval, 1s);
    EXPECT_EQ(r.config.cluster.claim_write_bound, 500ms);
}

TEST_F(ConfigFiles, ClusterSettingsAreReadAndRangeChecked) {
    auto r =
        load(minimal_yaml() + "cluster:\n  refresh_interval: 250ms\n  claim_write_bound: 2s\n");
    ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
    EXPECT_EQ(r.config.cluster.refresh_interval, 250ms);
    EXPECT_EQ(r.config.cluster.claim_write_bound, 2s);
    EXPECT_TRUE(validate_config(r.config).empty()) << dump(validate_config(r.config));

    auto out =
        load(minimal_yaml() + "cluster:\n  refresh_interval: 50ms\n  claim_write_bound: 11s\n");
    ASSERT_TRUE(out.ok()) << dump(out.diagnostics);
    auto v = validate_config(out.config);
    EXPECT_NE(find(v, "cluster.refresh_interval"), nullptr) << dump(v);
    EXPECT_NE(find(v, "cluster.claim_write_bound"), nullptr) << dump(v);

    auto unknown = load(minimal_yaml() + "cluster:\n  settle: 1s\n");
    EXPECT_FALSE(unknown.ok());
    EXPECT_NE(dump(unknown.diagnostics).find("cluster.settle"), std::string::npos)
        << dump(unknown.diagnostics);
}

TEST_F(ConfigFiles, ValidationReportsEveryProblemWithItsLocation) {
    fs::remove(root_ / "tls/ca.crt");
    fs::remove(root_ / "policy/p.yaml");
    fs::permissions(root_ / "hsm/user.pin",
                    fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    std::string yaml = valid_yaml();
    auto replace = [&](const std::string& from, const std::string& to) {
        yaml.replace(yaml.find(from), from.size(), to);
    };
    replace("address: 0.0.0.0", "address: localhost");
    replace("hsm_threads: 5", "hsm_threads: 7");
    replace("max_header_bytes: 4096", "max_header_bytes: 100");
    replace("read_timeout: 1500ms", "read_timeout: 2h");
    replace("dir: audit", "dir: no/such/dir");
    replace("max_requests_in_flight_per_connection: 2", "max_requests_in_flight_per_connection: 0");
    auto r = load(yaml);
    ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
    auto v = validate_config(r.config);
    for (const char* key : {"listen.address", "tls.client_ca", "policy.path", "hsm.token_uri",
                            "server.hsm_threads", "limits.max_header_bytes", "limits.read_timeout",
                            "audit.dir", "limits.max_requests_in_flight_per_connection"}) {
        EXPECT_NE(find(v, key), nullptr) << key << "\n" << dump(v);
    }
    EXPECT_EQ(v.size(), 9u) << dump(v);
    EXPECT_EQ(find(v, "listen.address")->line, 2);
    EXPECT_NE(find(v, "hsm.token_uri")->message.find("0444"), std::string::npos) << dump(v);
}

// --check-config applies the audit log's own origin rule: an origin the configuration accepts
// always opens the log, and one the log would refuse is refused before the daemon starts.
TEST_F(ConfigFiles, AuditOriginIsCheckedByTheRuleTheAuditLogApplies) {
    const std::vector<std::pair<std::string, bool>> cases = {
        {"o", true},
        {"signer.example.com/licentra-signd/1", true},
        {std::string(255, 'x'), true},
        {std::string(256, 'x'), false},
        {"two words", false},
        {"tab\\there", false},  // YAML's \t escape: a tab, not printable
        {"caf\u00e9", false},   // not ASCII
    };                          // an empty origin is refused while loading already
    for (const auto& [yaml_value, ok] : cases) {
        SCOPED_TRACE(yaml_value);
        std::string yaml = minimal_yaml();
        yaml.replace(yaml.find("  origin: o\n"), 12, "  origin: \"" + yaml_value + "\"\n");
        auto r = load(yaml);
        ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
        const bool accepted = find(validate_config(r.config), "audit.origin") == nullptr;
        EXPECT_EQ(accepted, ok);
        EXPECT_EQ(audit::is_valid_origin(r.config.audit.origin), ok);
    }
}

TEST_F(ConfigFiles, PortsMustBeInRangeAndListenersDistinct) {
    std::string yaml = minimal_yaml() +
                       "listen:\n  port: 70000\n"
                       "operations:\n  port: 8443\n";
    auto r = load(yaml);
    ASSERT_NE(find(r.diagnostics, "listen.port"), nullptr) << dump(r.diagnostics);
    auto same = load(minimal_yaml() + "operations:\n  port: 8443\n");
    ASSERT_TRUE(same.ok());
    EXPECT_NE(find(validate_config(same.config), "operations.port"), nullptr);
}

TEST_F(ConfigFiles, ThePublicJwksListenerIsOffUnlessConfiguredAndHasAPortOfItsOwn) {
    auto none = load(minimal_yaml());
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none.config.public_jwks.has_value());

    auto defaults = load(minimal_yaml() + "public_jwks: {}\n");
    ASSERT_TRUE(defaults.ok()) << dump(defaults.diagnostics);
    ASSERT_TRUE(defaults.config.public_jwks.has_value());
    EXPECT_EQ(defaults.config.public_jwks->address, "127.0.0.1");
    EXPECT_EQ(defaults.config.public_jwks->port, 8444);
    EXPECT_TRUE(validate_config(defaults.config).empty());

    auto on_api = load(minimal_yaml() + "public_jwks:\n  port: 8443\n");
    ASSERT_TRUE(on_api.ok());
    const auto d = validate_config(on_api.config);
    ASSERT_NE(find(d, "public_jwks.port"), nullptr);
    EXPECT_NE(find(d, "public_jwks.port")->message.find("API listener"), std::string::npos);
    auto on_ops = load(minimal_yaml() + "public_jwks:\n  address: 0.0.0.0\n  port: 9090\n");
    ASSERT_TRUE(on_ops.ok());
    EXPECT_NE(find(validate_config(on_ops.config), "public_jwks.port"), nullptr);
    auto unknown = load(minimal_yaml() + "public_jwks:\n  tls: x\n");
    EXPECT_FALSE(unknown.ok());
    EXPECT_NE(find(unknown.diagnostics, "public_jwks.tls"), nullptr) << dump(unknown.diagnostics);
    auto name = load(minimal_yaml() + "public_jwks:\n  address: example.com\n");
    ASSERT_TRUE(name.ok());
    EXPECT_NE(find(validate_config(name.config), "public_jwks.address"), nullptr);
}

TEST_F(ConfigFiles, AuditPruneAfterIsOffUnlessSetAndIsADurationOfAtLeastOneSecond) {
    auto absent = load(minimal_yaml());
    ASSERT_TRUE(absent.ok()) << dump(absent.diagnostics);
    EXPECT_FALSE(absent.config.audit.prune_after.has_value());

    for (const auto& [text, value] : std::vector<std::pair<std::string, std::chrono::milliseconds>>{
             {"730d", std::chrono::hours(730 * 24)}, {"1s", 1s}, {"36500d", 36500 * 24h}}) {
        SCOPED_TRACE(text);
        auto r = load(minimal_yaml() + "  prune_after: " + text + "\n");
        ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
        EXPECT_EQ(r.config.audit.prune_after, value);
        EXPECT_TRUE(validate_config(r.config).empty()) << dump(validate_config(r.config));
    }

    // Not a duration: refused while loading, with its key path.
    for (const char* bad : {"730", "2y", "-1d", "1.5d", "36501d", "\"\"", "[1d]"}) {
        SCOPED_TRACE(bad);
        auto r = load(minimal_yaml() + "  prune_after: " + bad + "\n");
        EXPECT_FALSE(r.ok());
        EXPECT_NE(find(r.diagnostics, "audit.prune_after"), nullptr) << dump(r.diagnostics);
    }

    // Below a second: refused by validation, which --check-config and the daemon both run
    // (load_and_validate).
    for (const char* tiny : {"0s", "999ms"}) {
        SCOPED_TRACE(tiny);
        auto r = load(minimal_yaml() + "  prune_after: " + tiny + "\n");
        ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
        auto v = validate_config(r.config);
        ASSERT_NE(find(v, "audit.prune_after"), nullptr) << dump(v);
        EXPECT_EQ(v.size(), 1u) << dump(v);
        std::vector<Diagnostic> diags;
        auto checked = load_and_validate(root_ / "config.yaml", &diags);
        ASSERT_FALSE(checked.ok());
        EXPECT_EQ(checked.error().code, "config.invalid");
        ASSERT_NE(find(diags, "audit.prune_after"), nullptr) << dump(diags);
        EXPECT_EQ(find(diags, "audit.prune_after")->message,
                  "must be between 1000ms and " + std::to_string(36500LL * 86'400'000LL) + "ms");
    }
}

TEST_F(ConfigFiles, LoadAndValidateJoinsAllDiagnostics) {
    test::write_file(root_ / "config.yaml", minimal_yaml() + "x: 1\ny: 2\n", 0644);
    std::vector<Diagnostic> diags;
    auto r = load_and_validate(root_ / "config.yaml", &diags);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "config.invalid");
    EXPECT_EQ(r.error().kind, core::ErrorKind::usage);
    EXPECT_EQ(diags.size(), 2u);
    EXPECT_NE(r.error().message.find('\n'), std::string::npos);
    test::write_file(root_ / "config.yaml", minimal_yaml(), 0644);
    EXPECT_TRUE(load_and_validate(root_ / "config.yaml").ok());
}

TEST(ConfigExample, TheShippedExampleParsesAndPointsIntoTheRepository) {
    const fs::path example = fs::path(LICENTRA_SOURCE_DIR) / "config" / "signd.example.yaml";
    auto r = load_config(example);
    ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
    const fs::path repo = fs::absolute(fs::path(LICENTRA_SOURCE_DIR)).lexically_normal();
    auto under = [&](const fs::path& p, const char* dir) {
        return p.lexically_relative(repo / dir).string().rfind("..", 0) != 0;
    };
    EXPECT_TRUE(under(r.config.tls.cert, "var/tls"));
    EXPECT_TRUE(under(r.config.tls.key, "var/tls"));
    EXPECT_TRUE(under(r.config.tls.client_ca, "var/tls"));
    EXPECT_TRUE(under(r.config.hsm.pin_file, "var/hsm"));
    EXPECT_TRUE(under(r.config.audit.dir, "var"));
    EXPECT_EQ(r.config.policy.path, repo / "policy/policy.example.yaml");
    EXPECT_TRUE(fs::exists(r.config.policy.path));
    EXPECT_EQ(r.config.listen.port, 8443);
    EXPECT_EQ(r.config.operations.port, 9090);
}

TEST_F(ConfigFiles, DurationsUseTheCommonSyntax) {
    auto r =
        load(minimal_yaml() + "cluster:\n  refresh_interval: 250ms\n  claim_write_bound: 1s\n");
    ASSERT_TRUE(r.ok()) << dump(r.diagnostics);
    EXPECT_EQ(r.config.cluster.refresh_interval, 250ms);
    EXPECT_EQ(r.config.cluster.claim_write_bound, 1s);
    for (const char* bad : {"10", "1.5s", "-1s", "010s", "1h30m"}) {
        auto b = load(minimal_yaml() + "cluster:\n  refresh_interval: " + bad + "\n");
        EXPECT_NE(find(b.diagnostics, "cluster.refresh_interval"), nullptr) << bad;
    }
}

}  // namespace
}  // namespace licentra::config
