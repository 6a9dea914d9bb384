// Benchmark: signatures/s and p50/p99 latency per algorithm at 1 and 2 threads, through the
// session pool (Token::sign) and as raw C_SignInit+C_Sign on pre-opened sessions, in the same
// run on the same key. Provisions its own temporary SoftHSM token.
//
// Usage: hsm_sign [seconds-per-cell (default 2)] [rsa-seconds (default 1)]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench_cli.hpp"
#include "crypto/digest.hpp"
#include "hsm/internal.hpp"
#include "support/key_capabilities.hpp"
#include "support/softhsm.hpp"

using namespace licentra;
using Clock = std::chrono::steady_clock;

namespace {

struct Cell {
    double per_second = 0;
    double p50_us = 0;
    double p99_us = 0;
    std::size_t ops = 0;
};

// Latencies and wall time of one or more measurement rounds.
struct Samples {
    std::vector<double> lat;
    double elapsed = 0;
    void add(const Samples& o) {
        lat.insert(lat.end(), o.lat.begin(), o.lat.end());
        elapsed += o.elapsed;
    }
    Cell cell() {
        std::sort(lat.begin(), lat.end());
        Cell c;
        c.ops = lat.size();
        c.per_second = static_cast<double>(lat.size()) / elapsed;
        if (!lat.empty()) {
            c.p50_us = lat[lat.size() / 2];
            c.p99_us = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
        }
        return c;
    }
};

template <typename Op>
Samples measure(unsigned threads, double seconds, Op&& op_for_thread) {
    std::vector<std::vector<double>> lat(threads);
    std::atomic<bool> go{false};
    std::atomic<bool> failed{false};
    std::vector<std::thread> pool;
    const auto duration = std::chrono::duration<double>(seconds);
    for (unsigned i = 0; i < threads; ++i) {
        pool.emplace_back([&, i] {
            auto op = op_for_thread(i);
            while (!go.load()) std::this_thread::yield();
            const auto end = Clock::now() + duration;
            lat[i].reserve(100000);
            for (std::uint64_t n = 0;; ++n) {
                const auto t0 = Clock::now();
                if (t0 >= end) break;
                if (!op(n)) {
                    failed = true;
                    break;
                }
                lat[i].push_back(
                    std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
            }
        });
    }
    const auto start = Clock::now();
    go = true;
    for (auto& t : pool) t.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (failed) {
        std::fprintf(stderr, "hsm_sign: an operation failed\n");
        std::exit(1);
    }
    Samples out;
    for (auto& l : lat) out.lat.insert(out.lat.end(), l.begin(), l.end());
    out.elapsed = elapsed;
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = 2.0;
    double rsa_seconds = 1.0;
    CLI::App app("HSM signing throughput and latency: pooled Token::sign vs raw C_Sign",
                 "hsm_sign");
    app.add_option("SECONDS", seconds, "Seconds per EdDSA/ECDSA measurement")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("RSA_SECONDS", rsa_seconds, "Seconds per RSA measurement")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    bench::parse_or_exit(app, argc, argv);
    test::SoftHsmToken fixture("licentra-bench");
    auto module = hsm::Module::load(test::SoftHsmToken::module_path());
    if (!module) {
        std::fprintf(stderr, "%s\n", module.error().to_string().c_str());
        return 1;
    }
    CK_FUNCTION_LIST* fl = (*module)->state().fl;

    struct Alg {
        const char* name;
        crypto::Algorithm alg;
    };
    const Alg algs[] = {{"Ed25519 (EdDSA)", crypto::Algorithm::EdDSA},
                        {"P-256 (ES256)", crypto::Algorithm::ES256},
                        {"P-384 (ES384)", crypto::Algorithm::ES384},
                        {"RSA-3072 (PS256)", crypto::Algorithm::PS256}};
    const std::string message(200, 'm');  // about the size of a JWS signing input
    const auto mview = core::as_bytes(message);

    std::printf(
        "| algorithm | threads | pool sig/s | pool p50 µs | pool p99 µs | raw sig/s | raw p50 µs | "
        "raw p99 µs | pool/raw |\n");
    std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for (const auto& a : algs) {
        const double secs = a.alg == crypto::Algorithm::PS256 ? rsa_seconds : seconds;
        for (unsigned threads : {1U, 2U}) {
            hsm::TokenOptions o;
            o.uri = fixture.uri();
            o.pool_size = threads;
            auto token = hsm::Token::open(*module, o);
            if (!token) {
                std::fprintf(stderr, "%s\n", token.error().to_string().c_str());
                return 1;
            }
            const std::string name =
                std::string("bench-") + std::to_string(static_cast<int>(a.alg));
            auto key = (*token)->load_key(name, 1);
            if (!key)
                key = (*token)->generate_key(licentra::test::generate_capability(name), 1, a.alg);
            if (!key) {
                std::fprintf(stderr, "%s\n", key.error().to_string().c_str());
                return 1;
            }
            const auto cap = licentra::test::sign_capability(name);
            // Warm the pool so every session exists before measuring.
            for (unsigned i = 0; i < 4 * threads; ++i) (void)(*token)->sign(cap, *key, mview);

            auto pool_op = [&](unsigned) {
                return [&](std::uint64_t) { return (*token)->sign(cap, *key, mview).ok(); };
            };

            // Raw: one pre-opened session per thread (already logged in: login is per
            // application), same key handle, same mechanism, same hashing.
            const CK_SLOT_ID slot = (*token)->state().slot;
            const CK_OBJECT_HANDLE handle = key->handles->priv.load();
            const CK_ULONG sig_len =
                a.alg == crypto::Algorithm::PS256
                    ? static_cast<CK_ULONG>(key->public_key->rsa_ne().first.size())
                    : static_cast<CK_ULONG>(crypto::raw_signature_size(a.alg));
            auto raw_op = [&](unsigned) {
                CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
                fl->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &s);
                auto sess = std::make_shared<hsm::detail::Session>(fl, s, 0);
                return [&, sess](std::uint64_t) {
                    CK_MECHANISM mech{};
                    CK_RSA_PKCS_PSS_PARAMS pss{CKM_SHA256, CKG_MGF1_SHA256, 32};
                    core::Bytes input;
                    switch (a.alg) {
                        case crypto::Algorithm::EdDSA:
                            mech.mechanism = CKM_EDDSA;
                            input.assign(mview.begin(), mview.end());
                            break;
                        case crypto::Algorithm::ES256: {
                            auto d = crypto::sha256(mview);
                            mech.mechanism = CKM_ECDSA;
                            input.assign(d.begin(), d.end());
                            break;
                        }
                        case crypto::Algorithm::ES384: {
                            auto d = crypto::sha384(mview);
                            mech.mechanism = CKM_ECDSA;
                            input.assign(d.begin(), d.end());
                            break;
                        }
                        case crypto::Algorithm::PS256:
                            mech.mechanism = CKM_SHA256_RSA_PKCS_PSS;
                            mech.pParameter = &pss;
                            mech.ulParameterLen = sizeof pss;
                            input.assign(mview.begin(), mview.end());
                            break;
                    }
                    core::Bytes sig(sig_len);
                    CK_ULONG len = sig_len;
                    if (fl->C_SignInit(sess->handle(), &mech, handle) != CKR_OK) return false;
                    return fl->C_Sign(sess->handle(), input.data(),
                                      static_cast<CK_ULONG>(input.size()), sig.data(),
                                      &len) == CKR_OK;
                };
            };
            // Interleave pool and raw rounds so background load hits both alike.
            constexpr int kRounds = 4;
            Samples pool_samples;
            Samples raw_samples;
            for (int r = 0; r < kRounds; ++r) {
                pool_samples.add(measure(threads, secs / kRounds, pool_op));
                raw_samples.add(measure(threads, secs / kRounds, raw_op));
            }
            const Cell pool = pool_samples.cell();
            const Cell raw = raw_samples.cell();
            std::printf("| %s | %u | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f%% |\n", a.name,
                        threads, pool.per_second, pool.p50_us, pool.p99_us, raw.per_second,
                        raw.p50_us, raw.p99_us, 100.0 * pool.per_second / raw.per_second);
            std::fflush(stdout);
        }
    }
    return 0;
}
