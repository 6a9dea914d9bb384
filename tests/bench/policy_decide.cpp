// Policy decision throughput on one thread: authorize (allow and deny paths, by Principal and
// by name), identify, and claim validation. Usage: policy_decide [POLICY] [SECONDS_PER_CASE]
// Results are recorded in docs/performance.md.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "bench_cli.hpp"
#include "policy/loader.hpp"

namespace {

using namespace licentra;
using Clock = std::chrono::steady_clock;

volatile std::size_t g_sink = 0;

void run(const char* name, double seconds, const std::function<std::size_t()>& op) {
    for (int i = 0; i < 1000; ++i) g_sink = g_sink + op();  // warm up
    std::size_t n = 0;
    const auto start = Clock::now();
    const auto until = start + std::chrono::duration<double>(seconds);
    auto now = start;
    while (now < until) {
        for (int i = 0; i < 1000; ++i) g_sink = g_sink + op();
        n += 1000;
        now = Clock::now();
    }
    const double secs = std::chrono::duration<double>(now - start).count();
    std::printf("| %-44s | %12.0f | %8.1f |\n", name, static_cast<double>(n) / secs,
                secs * 1e9 / static_cast<double>(n));
}

}  // namespace

int main(int argc, char** argv) {
    std::string path = std::string(LICENTRA_SOURCE_DIR) + "/policy/policy.example.yaml";
    double seconds = 2.0;
    CLI::App app("Policy decisions per second", "policy_decide");
    app.add_option("POLICY", path, "Policy file")->capture_default_str();
    app.add_option("SECONDS", seconds, "Seconds per measurement")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    bench::parse_or_exit(app, argc, argv);
    policy::PolicyLoad l = policy::load_policy_file(path);
    if (!l.ok()) {
        std::fprintf(stderr, "%s\n", l.error().message.c_str());
        return 1;
    }
    const policy::Engine& e = *l.engine;
    const policy::Principal& signer = *e.find_principal("license-server");
    const policy::Principal& officer = *e.find_principal("officer-a");
    core::ClientIdentity id;
    id.subject_cn = "officer-c";
    id.issuer_dn = "CN=Licentra Dev CA";
    const auto now = core::Clock::now();
    const std::int64_t exp = core::unix_seconds(now) + 30 * 86400;
    const nlohmann::json claims = {{"sub", "customer-1234"},
                                   {"product", "product-a"},
                                   {"edition", "pro"},
                                   {"features", {"export", "sso", "audit"}},
                                   {"seats", 25},
                                   {"exp", exp}};
    const nlohmann::json bad = {{"sub", "customer-1234"},
                                {"email", "x@example.org"},
                                {"seats", 0},
                                {"iss", "me"},
                                {"exp", exp + 400 * 86400}};

    std::printf("policy %s, %.1f s per case, one thread\n\n", path.c_str(), seconds);
    std::printf("| %-44s | %12s | %8s |\n", "case", "ops/s", "ns/op");
    std::printf("|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(14, '-').c_str(),
                std::string(10, '-').c_str());
    run("authorize<TokenSign>(Principal&, key) allow", seconds,
        [&] { return e.authorize<core::action::TokenSign>(signer, "product-a").ok() ? 1u : 0u; });
    run("authorize<TokenSign>(Principal&, key) deny", seconds,
        [&] { return e.authorize<core::action::TokenSign>(officer, "product-a").ok() ? 1u : 0u; });
    run("authorize<TokenSign>(name, key) allow", seconds, [&] {
        return e.authorize<core::action::TokenSign>("license-server", "product-b").ok() ? 1u : 0u;
    });
    run("authorize<AuditRead>(Principal&) deny", seconds,
        [&] { return e.authorize<core::action::AuditRead>(signer).ok() ? 1u : 0u; });
    run("identify(ClientIdentity) subject_cn+issuer", seconds,
        [&] { return e.identify(id).ok() ? 1u : 0u; });
    run("validate_claims valid (6 claims)", seconds,
        [&] { return e.validate_claims("product-a", claims, now).size(); });
    run("validate_claims 5 violations", seconds,
        [&] { return e.validate_claims("product-a", bad, now).size(); });
    return 0;
}
