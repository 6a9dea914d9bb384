// p11kit_remote: the bare PKCS#11 signing loop that the end-to-end benchmark compares
// licentra-signd against. It loads any PKCS#11 module with dlopen — SoftHSM itself (raw
// in-process C_Sign) or p11-kit-client.so (the same loop through `p11-kit server`, i.e. a bare
// remote-PKCS#11 peer) — opens one session per thread, and runs C_SignInit + C_Sign on a
// 200-byte message (about a JWS signing input; hashed with SHA-256 first for ES256, as JWS
// needs) for a fixed time. The key pair is found by label on the token, or generated there as a
// token object (sign-only, non-extractable) if it is missing.
//
//   p11kit_remote --module PATH --uri "pkcs11:token=L?pin-source=file:PIN" --alg ES256|EdDSA
//                 [--threads 2] [--seconds 3] [--warmup 0.5] [--label bench/<alg>] [--json]
//
// The PIN is read from the pin-source file, never from the command line. For p11-kit-client.so
// set P11_KIT_SERVER_ADDRESS to what `p11-kit server` printed.
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_cli.hpp"
#include "crypto/digest.hpp"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "p11kit_remote: %s\n", why.c_str());
    std::exit(1);
}

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr, "p11kit_remote: %s\nRun p11kit_remote --help for usage.\n", why.c_str());
    std::exit(2);
}

void check(CK_RV rv, const char* what) {
    if (rv != CKR_OK) {
        char buf[128];
        std::snprintf(buf, sizeof buf, "%s failed: CKR 0x%lx", what,
                      static_cast<unsigned long>(rv));
        die(buf);
    }
}

struct Options {
    std::string module;
    std::string uri;
    std::string alg;
    std::string label;
    unsigned threads = 2;
    double seconds = 3;
    double warmup = 0.5;
    bool json = false;
};

Options parse(int argc, char** argv) {
    Options o;
    CLI::App app("A bare C_SignInit + C_Sign loop over any PKCS#11 module", "p11kit_remote");
    app.add_option("--module", o.module, "PKCS#11 module")->required();
    app.add_option("--uri", o.uri, "pkcs11:token=L?pin-source=file:PIN")->required();
    app.add_option("--alg", o.alg, "Algorithm")
        ->required()
        ->check(CLI::IsMember({"ES256", "EdDSA"}));
    app.add_option("--threads", o.threads, "Signing threads")
        ->check(CLI::Range(1U, 1024U))
        ->capture_default_str();
    app.add_option("--seconds", o.seconds, "Measured seconds")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--warmup", o.warmup, "Warm-up seconds")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--label", o.label, "Key label (default bench/<alg>)");
    app.add_flag("--json", o.json, "Print the result as JSON");
    licentra::bench::parse_or_exit(app, argc, argv);
    if (o.label.empty()) o.label = "bench/" + o.alg;
    return o;
}

std::string trim_token_field(const unsigned char* field, std::size_t n) {
    std::string s(reinterpret_cast<const char*>(field), n);
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

struct Target {
    std::string token_label;
    std::string pin;
};

Target parse_uri(const std::string& text) {
    P11KitUri* uri = p11_kit_uri_new();
    if (p11_kit_uri_parse(text.c_str(), P11_KIT_URI_FOR_TOKEN, uri) != P11_KIT_URI_OK) {
        p11_kit_uri_free(uri);
        usage("malformed PKCS#11 URI");
    }
    Target t;
    CK_TOKEN_INFO* ti = p11_kit_uri_get_token_info(uri);
    t.token_label = trim_token_field(ti->label, sizeof ti->label);
    const char* src = p11_kit_uri_get_pin_source(uri);
    std::string source = src ? src : "";
    p11_kit_uri_free(uri);
    if (t.token_label.empty()) usage("the URI must name the token (token=...)");
    if (source.rfind("file:", 0) == 0) source = source.substr(5);
    if (source.empty()) usage("the URI needs pin-source=file:PATH");
    std::ifstream in(source);
    if (!in) die("cannot read the PIN file named by pin-source");
    std::getline(in, t.pin);
    while (!t.pin.empty() && (t.pin.back() == '\n' || t.pin.back() == '\r')) t.pin.pop_back();
    return t;
}

CK_SLOT_ID find_slot(CK_FUNCTION_LIST* fl, const std::string& label) {
    CK_ULONG n = 0;
    check(fl->C_GetSlotList(CK_TRUE, nullptr, &n), "C_GetSlotList");
    std::vector<CK_SLOT_ID> slots(n);
    check(fl->C_GetSlotList(CK_TRUE, slots.data(), &n), "C_GetSlotList");
    slots.resize(n);  // the second call's count is the one to trust
    for (CK_SLOT_ID s : slots) {
        CK_TOKEN_INFO ti{};
        if (fl->C_GetTokenInfo(s, &ti) != CKR_OK) continue;
        if (trim_token_field(ti.label, sizeof ti.label) == label) return s;
    }
    die("no token labelled '" + label + "'");
}

CK_OBJECT_HANDLE find_key(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, const std::string& label) {
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
    };
    check(fl->C_FindObjectsInit(s, tmpl, 2), "C_FindObjectsInit");
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG found = 0;
    check(fl->C_FindObjects(s, &h, 1, &found), "C_FindObjects");
    check(fl->C_FindObjectsFinal(s), "C_FindObjectsFinal");
    return found == 1 ? h : CK_INVALID_HANDLE;
}

CK_OBJECT_HANDLE generate_key(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, const std::string& alg,
                              const std::string& label) {
    static const unsigned char p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                         0xce, 0x3d, 0x03, 0x01, 0x07};
    static const unsigned char ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
    const bool ec = alg == "ES256";
    CK_MECHANISM mech{ec ? CKM_EC_KEY_PAIR_GEN : CKM_EC_EDWARDS_KEY_PAIR_GEN, nullptr, 0};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BYTE* params = const_cast<CK_BYTE*>(ec ? p256 : ed25519);
    const CK_ULONG params_len = ec ? sizeof p256 : sizeof ed25519;
    auto* lbl = const_cast<char*>(label.data());
    CK_ATTRIBUTE pub[] = {
        {CKA_TOKEN, &yes, sizeof yes},       {CKA_VERIFY, &yes, sizeof yes},
        {CKA_ENCRYPT, &no, sizeof no},       {CKA_WRAP, &no, sizeof no},
        {CKA_EC_PARAMS, params, params_len}, {CKA_LABEL, lbl, label.size()},
    };
    CK_ATTRIBUTE priv[] = {
        {CKA_TOKEN, &yes, sizeof yes},     {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes}, {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_SIGN, &yes, sizeof yes},      {CKA_DECRYPT, &no, sizeof no},
        {CKA_UNWRAP, &no, sizeof no},      {CKA_DERIVE, &no, sizeof no},
        {CKA_LABEL, lbl, label.size()},
    };
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE, hpriv = CK_INVALID_HANDLE;
    check(fl->C_GenerateKeyPair(s, &mech, pub, sizeof pub / sizeof pub[0], priv,
                                sizeof priv / sizeof priv[0], &hpub, &hpriv),
          "C_GenerateKeyPair");
    return hpriv;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    const Target target = parse_uri(o.uri);

    void* lib = dlopen(o.module.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) die(std::string("cannot load module: ") + dlerror());
    auto get_list = reinterpret_cast<CK_C_GetFunctionList>(dlsym(lib, "C_GetFunctionList"));
    if (get_list == nullptr) die("module has no C_GetFunctionList");
    CK_FUNCTION_LIST* fl = nullptr;
    check(get_list(&fl), "C_GetFunctionList");
    CK_C_INITIALIZE_ARGS init{};
    init.flags = CKF_OS_LOCKING_OK;  // SoftHSM disables its own locking without it
    check(fl->C_Initialize(&init), "C_Initialize");

    const CK_SLOT_ID slot = find_slot(fl, target.token_label);
    CK_SESSION_HANDLE admin = CK_INVALID_HANDLE;
    check(fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &admin),
          "C_OpenSession");
    const CK_RV login = fl->C_Login(
        admin, CKU_USER, reinterpret_cast<CK_UTF8CHAR*>(const_cast<char*>(target.pin.data())),
        target.pin.size());
    if (login != CKR_OK && login != CKR_USER_ALREADY_LOGGED_IN) check(login, "C_Login");
    CK_OBJECT_HANDLE key = find_key(fl, admin, o.label);
    const bool generated = key == CK_INVALID_HANDLE;
    if (generated) key = generate_key(fl, admin, o.alg, o.label);

    const std::string message(200, 'm');
    const CK_ULONG sig_len = 64;  // P-256 r||s and Ed25519 are both 64 bytes
    std::atomic<bool> go{false};
    std::atomic<bool> failed{false};
    std::atomic<CK_RV> fail_rv{CKR_OK};
    std::vector<std::vector<std::uint32_t>> lat(o.threads);
    std::atomic<std::uint64_t> signed_total{0};  // warm-up included, for CPU per signature
    std::vector<std::thread> pool;
    const auto warmup =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
    const auto measure =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
    Clock::time_point from, to;
    for (unsigned i = 0; i < o.threads; ++i) {
        pool.emplace_back([&, i] {
            CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
            if (CK_RV rv = fl->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &s);
                rv != CKR_OK) {
                fail_rv = rv;
                failed = true;
                return;
            }
            lat[i].reserve(200000);
            while (!go.load()) std::this_thread::yield();
            const auto m = licentra::core::as_bytes(message);
            for (;;) {
                const auto t0 = Clock::now();
                if (t0 >= to || failed.load()) break;
                CK_MECHANISM mech{o.alg == "ES256" ? CKM_ECDSA : CKM_EDDSA, nullptr, 0};
                licentra::core::Bytes input;
                if (o.alg == "ES256") {
                    auto d = licentra::crypto::sha256(m);
                    input.assign(d.begin(), d.end());
                } else {
                    input.assign(m.begin(), m.end());
                }
                unsigned char sig[sig_len];
                CK_ULONG len = sig_len;
                CK_RV rv = fl->C_SignInit(s, &mech, key);
                if (rv == CKR_OK) {
                    rv =
                        fl->C_Sign(s, input.data(), static_cast<CK_ULONG>(input.size()), sig, &len);
                }
                if (rv != CKR_OK || len != sig_len) {
                    fail_rv = rv;
                    failed = true;
                    break;
                }
                signed_total.fetch_add(1, std::memory_order_relaxed);
                if (t0 >= from) {
                    lat[i].push_back(static_cast<std::uint32_t>(
                        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0)
                            .count()));
                }
            }
            fl->C_CloseSession(s);
        });
    }
    // Process CPU (user + system) over the signing loop, warm-up included, per signature: the
    // figure that holds on a noisy machine (scripts/bench compares the daemon's against it).
    auto cpu_us = [] {
        rusage ru{};
        ::getrusage(RUSAGE_SELF, &ru);
        auto us = [](const timeval& t) {
            return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec);
        };
        return us(ru.ru_utime) + us(ru.ru_stime);
    };
    from = Clock::now() + warmup;
    to = from + measure;
    const double cpu_before = cpu_us();
    go = true;
    for (auto& t : pool) t.join();
    const double cpu_per_sig =
        (cpu_us() - cpu_before) / static_cast<double>(std::max<std::uint64_t>(1, signed_total));
    fl->C_CloseSession(admin);
    fl->C_Finalize(nullptr);
    if (failed) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "signing failed: CKR 0x%lx",
                      static_cast<unsigned long>(fail_rv.load()));
        die(buf);
    }

    std::vector<std::uint32_t> all;
    for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) {
        if (all.empty()) return 0.0;
        const auto idx = static_cast<std::size_t>(p * static_cast<double>(all.size() - 1) + 0.5);
        return static_cast<double>(all[idx]) / 1000.0;
    };
    const double rate = static_cast<double>(all.size()) / o.seconds;
    if (o.json) {
        std::printf(
            "{\"module\":\"%s\",\"alg\":\"%s\",\"threads\":%u,\"signatures\":%zu,"
            "\"rate\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"cpu_us_per_sig\":%.1f,"
            "\"generated\":%s}\n",
            o.module.c_str(), o.alg.c_str(), o.threads, all.size(), rate, pct(0.5), pct(0.99),
            cpu_per_sig, generated ? "true" : "false");
    } else {
        std::printf(
            "%s %s, %u threads: %.0f signatures/s, p50 %.3f ms, p99 %.3f ms, %.1f us CPU per "
            "signature\n",
            o.module.c_str(), o.alg.c_str(), o.threads, rate, pct(0.5), pct(0.99), cpu_per_sig);
    }
    return 0;
}
