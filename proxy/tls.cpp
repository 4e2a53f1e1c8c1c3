#include "proxy/tls.h"

#include <openssl/err.h>

namespace mongogate::proxy {
namespace {

// "what: reason" from a Boost error or, failing that, OpenSSL's error queue.
std::string describe(const std::string& what, const error_code& ec) {
  std::string reason = ec.message();
  if (unsigned long code = ERR_get_error(); code != 0) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    reason = text;
  }
  ERR_clear_error();
  return what + ": " + reason;
}

// Loads the certificate chain and key; the key may live in the certificate's file.
bool loadIdentity(ssl::context& context, const std::string& certificateFile, const std::string& keyFile,
                  const std::string& password, std::string& error) {
  error_code ec;
  if (!password.empty()) {
    context.set_password_callback([password](std::size_t, ssl::context::password_purpose) { return password; }, ec);
  }
  context.use_certificate_chain_file(certificateFile, ec);
  if (ec) {
    error = describe("cannot load the certificate " + certificateFile, ec);
    return false;
  }
  const std::string& key = keyFile.empty() ? certificateFile : keyFile;
  context.use_private_key_file(key, ssl::context::pem, ec);
  if (ec) {
    error = describe("cannot load the private key " + key, ec);
    return false;
  }
  if (SSL_CTX_check_private_key(context.native_handle()) != 1) {
    error = describe("the private key " + key + " does not match the certificate " + certificateFile, ec);
    return false;
  }
  return true;
}

std::unique_ptr<ssl::context> makeContext(ssl::context::method method) {
  auto context = std::make_unique<ssl::context>(method);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  return context;
}

}  // namespace

std::unique_ptr<ssl::context> makeUpstreamTlsContext(const config::UpstreamTlsConfig& settings, std::string& error) {
  auto context = makeContext(ssl::context::tls_client);
  error_code ec;
  if (settings.caFile.empty()) {
    context->set_default_verify_paths(ec);
  } else {
    context->load_verify_file(settings.caFile, ec);
  }
  if (ec) {
    error = describe(settings.caFile.empty() ? std::string("cannot load the system's CA certificates")
                                             : "cannot load the CA file " + settings.caFile,
                     ec);
    return nullptr;
  }
  context->set_verify_mode(settings.allowInvalidCertificates ? ssl::verify_none : ssl::verify_peer);
  if (!settings.certificateKeyFile.empty() &&
      !loadIdentity(*context, settings.certificateKeyFile, "", settings.certificateKeyPassword, error)) {
    return nullptr;
  }
  return context;
}

std::unique_ptr<ssl::context> makeListenTlsContext(const config::ListenTlsConfig& settings, std::string& error) {
  auto context = makeContext(ssl::context::tls_server);
  if (!loadIdentity(*context, settings.certificateFile, settings.keyFile, "", error)) return nullptr;
  if (!settings.caFile.empty()) {
    error_code ec;
    context->load_verify_file(settings.caFile, ec);
    if (ec) {
      error = describe("cannot load the CA file " + settings.caFile, ec);
      return nullptr;
    }
    context->set_verify_mode(settings.requireClientCertificate
                                 ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert
                                 : ssl::verify_peer);
  } else if (settings.requireClientCertificate) {
    error = "a client certificate is required but no CA file verifies it";
    return nullptr;
  }
  return context;
}

}  // namespace mongogate::proxy
