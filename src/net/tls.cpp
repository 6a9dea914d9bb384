#include "net/tls.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/system/error_code.hpp>
#include <cstdio>
#include <ctime>

#include "crypto/ossl.hpp"

namespace licentra::net {
namespace ssl = boost::asio::ssl;

namespace {

core::Error config_error(const std::string& what, const std::filesystem::path& file,
                         const boost::system::error_code& ec) {
    std::string message = what + " '" + file.string() + "'";
    if (ec) message += ": " + ec.message();
    return core::make_error(core::ErrorKind::usage, "net.tls_config", std::move(message));
}

core::Status restrict_to_tls13(SSL_CTX* ctx) {
    // RFC 8446 only: both bounds pinned, so neither peer can negotiate TLS 1.2 or lower.
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
        return core::make_error(
            core::ErrorKind::internal, "net.tls_config",
            "cannot restrict the protocol to TLS 1.3: " + crypto::last_openssl_error());
    }
    // Idle connections keep no read/write buffers inside OpenSSL.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return core::ok_status();
}

core::Status load_chain_and_key(ssl::context& ctx, const std::filesystem::path& chain,
                                const std::filesystem::path& key) {
    boost::system::error_code ec;
    ctx.use_certificate_chain_file(chain.string(), ec);
    if (ec) return config_error("cannot load certificate chain", chain, ec);
    ctx.use_private_key_file(key.string(), ssl::context::pem, ec);
    if (ec) return config_error("cannot load private key", key, ec);
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
        ERR_clear_error();
        return config_error("private key does not match certificate", key, {});
    }
    return core::ok_status();
}

// Trust anchors from `ca` only. The context's X509_STORE starts empty and we never call
// set_default_verify_paths, so the system store is never consulted.
core::Status load_trust(ssl::context& ctx, const std::filesystem::path& ca) {
    boost::system::error_code ec;
    ctx.load_verify_file(ca.string(), ec);
    if (ec) return config_error("cannot load CA bundle", ca, ec);
    return core::ok_status();
}

}  // namespace

core::Result<std::shared_ptr<ssl::context>> make_server_context(const ServerTlsFiles& files) {
    try {
        auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
        SSL_CTX* native = ctx->native_handle();
        if (auto s = restrict_to_tls13(native); !s) return std::move(s).error();
        ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                         ssl::context::single_dh_use);
        if (auto s = load_chain_and_key(*ctx, files.cert_chain, files.private_key); !s) {
            return std::move(s).error();
        }
        // Every connection is a full handshake: no tickets, no session cache.
        SSL_CTX_set_num_tickets(native, 0);
        SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(native, SSL_OP_NO_TICKET);
        if (files.client_ca.empty()) {
            SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);  // server authentication only
            return ctx;
        }
        if (auto s = load_trust(*ctx, files.client_ca); !s) return std::move(s).error();

        // RFC 8446 §4.3.2: the CertificateRequest names the acceptable CAs.
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca.c_str());
        if (names == nullptr) {
            ERR_clear_error();
            return config_error("CA bundle holds no certificate", files.client_ca, {});
        }
        SSL_CTX_set_client_CA_list(native, names);

        // No certificate, no connection: the handshake itself fails (RFC 8446 §4.4.2.4,
        // "certificate_required" alert) when the client sends none or one we cannot verify.
        SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        return ctx;
    } catch (const std::exception& e) {
        return core::make_error(core::ErrorKind::internal, "net.tls_config", e.what());
    }
}

core::Result<std::shared_ptr<ssl::context>> make_client_context(const ClientTlsFiles& files) {
    try {
        auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
        if (auto s = restrict_to_tls13(ctx->native_handle()); !s) return std::move(s).error();
        if (auto s = load_trust(*ctx, files.ca); !s) return std::move(s).error();
        if (auto s = load_chain_and_key(*ctx, files.cert_chain, files.private_key); !s) {
            return std::move(s).error();
        }
        ctx->set_verify_mode(ssl::verify_peer);
        return ctx;
    } catch (const std::exception& e) {
        return core::make_error(core::ErrorKind::internal, "net.tls_config", e.what());
    }
}

core::Result<std::shared_ptr<ReloadableServerContext>> ReloadableServerContext::create(
    const ServerTlsFiles& files) {
    auto ctx = make_server_context(files);
    if (!ctx) return std::move(ctx).error();
    return std::shared_ptr<ReloadableServerContext>(
        new ReloadableServerContext(std::move(ctx).value()));
}

core::Status ReloadableServerContext::reload(const ServerTlsFiles& files) {
    auto ctx = make_server_context(files);
    if (!ctx) return std::move(ctx).error();
    {
        std::lock_guard lock(mutex_);
        ctx_ = std::move(ctx).value();
    }
    generation_.fetch_add(1);
    return core::ok_status();
}

std::shared_ptr<ssl::context> ReloadableServerContext::current() const {
    std::lock_guard lock(mutex_);
    return ctx_;
}

core::Result<std::int64_t> earliest_certificate_expiry(const std::filesystem::path& file) {
    auto fail = [&](const std::string& why) {
        return core::make_error(core::ErrorKind::usage, "net.tls_config",
                                "certificate file " + file.string() + ": " + why);
    };
    std::FILE* f = std::fopen(file.c_str(), "rb");
    if (f == nullptr) return fail("cannot be read");
    std::optional<std::int64_t> earliest;
    bool bad_time = false;
    while (crypto::X509Ptr cert{PEM_read_X509(f, nullptr, nullptr, nullptr)}) {
        std::tm tm{};
        if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) == 1) {
            const std::int64_t t = ::timegm(&tm);
            if (!earliest || t < *earliest) earliest = t;
        } else {
            bad_time = true;
        }
    }
    std::fclose(f);
    ERR_clear_error();  // the read that ended the loop (end of file)
    if (bad_time) return fail("a certificate has an unreadable notAfter");
    if (!earliest) return fail("holds no PEM certificate");
    return *earliest;
}

}  // namespace licentra::net
