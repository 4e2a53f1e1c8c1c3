// proxy/tls.h — OpenSSL contexts for both sides of the proxy, built once at start.
//
// Promise: a context either has everything its configuration names (files readable,
// key matching the certificate, verification mode set) or is not made, and the error
// says which file or setting is wrong — never a password. Upstream contexts verify the
// server's certificate unless allowInvalidCertificates; hostname checks are the
// Stream's (proxy/stream.h), per connection.
#pragma once

#include <memory>
#include <string>

#include "config/proxy_config.h"
#include "proxy/stream.h"

namespace mongogate::proxy {

// mongogate as a TLS client of an upstream. nullptr and `error` set on failure.
std::unique_ptr<ssl::context> makeUpstreamTlsContext(const config::UpstreamTlsConfig& settings, std::string& error);

// mongogate as a TLS server for its clients. nullptr and `error` set on failure.
std::unique_ptr<ssl::context> makeListenTlsContext(const config::ListenTlsConfig& settings, std::string& error);

}  // namespace mongogate::proxy
