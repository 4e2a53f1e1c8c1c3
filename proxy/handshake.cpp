#include "proxy/handshake.h"

#include <bson/bson.h>
#include <sys/utsname.h>

#include <chrono>
#include <cstring>

namespace mongogate::proxy {
namespace {

void appendBson(std::vector<std::uint8_t>& out, const bson_t* doc) {
  const std::uint8_t* data = bson_get_data(doc);
  out.insert(out.end(), data, data + doc->len);
}

bool iterInit(bson_iter_t& it, wire::Bytes body) {
  return bson_iter_init_from_data(&it, body.data(), body.size());
}

bool isTruthy(const bson_iter_t& it) { return bson_iter_as_bool(&it); }

std::int32_t asInt32(const bson_iter_t& it) {
  return static_cast<std::int32_t>(bson_iter_as_int64(&it));
}

}  // namespace

bool readClientHello(wire::Bytes body, ClientHello& out) {
  bson_iter_t it;
  if (!iterInit(it, body) || !bson_iter_next(&it)) return false;
  out.commandName = bson_iter_key(&it);
  while (bson_iter_next(&it)) {
    if (std::strcmp(bson_iter_key(&it), "helloOk") == 0) out.helloOk = isTruthy(it);
  }
  return true;
}

bool readClientHelloAuth(wire::Bytes body, ClientHelloAuth& out) {
  bson_iter_t it;
  if (!iterInit(it, body) || !bson_iter_next(&it)) return false;
  while (bson_iter_next(&it)) {
    const char* key = bson_iter_key(&it);
    if (std::strcmp(key, "saslSupportedMechs") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
      std::uint32_t length = 0;
      const char* value = bson_iter_utf8(&it, &length);
      out.saslSupportedMechs = {value, length};
    } else if (std::strcmp(key, "speculativeAuthenticate") == 0 && BSON_ITER_HOLDS_DOCUMENT(&it)) {
      std::uint32_t length = 0;
      const std::uint8_t* data = nullptr;
      bson_iter_document(&it, &length, &data);
      out.speculativeAuthenticate = {data, length};
    }
  }
  return true;
}

void appendHelloReply(std::vector<std::uint8_t>& out, const ClientHello& hello,
                      const UpstreamLimits& limits, std::int64_t connectionId,
                      const HelloAuthFields* auth) {
  bson_t reply;
  bson_init(&reply);
  if (hello.helloOk) BSON_APPEND_BOOL(&reply, "helloOk", true);
  // hello answers isWritablePrimary; the legacy spellings answer ismaster.
  if (hello.commandName == "hello") {
    BSON_APPEND_BOOL(&reply, "isWritablePrimary", true);
  } else {
    BSON_APPEND_BOOL(&reply, "ismaster", true);
  }
  BSON_APPEND_UTF8(&reply, "msg", "isdbgrid");
  BSON_APPEND_INT32(&reply, "maxBsonObjectSize", limits.maxBsonObjectSize);
  BSON_APPEND_INT32(&reply, "maxMessageSizeBytes", limits.maxMessageSizeBytes);
  BSON_APPEND_INT32(&reply, "maxWriteBatchSize", limits.maxWriteBatchSize);
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  BSON_APPEND_DATE_TIME(&reply, "localTime", now.count());
  if (limits.logicalSessionTimeoutMinutes >= 0) {
    BSON_APPEND_INT32(&reply, "logicalSessionTimeoutMinutes", limits.logicalSessionTimeoutMinutes);
  }
  BSON_APPEND_INT64(&reply, "connectionId", connectionId);
  BSON_APPEND_INT32(&reply, "maxWireVersion", limits.maxWireVersion);
  BSON_APPEND_INT32(&reply, "minWireVersion", limits.minWireVersion);
  BSON_APPEND_BOOL(&reply, "readOnly", false);
  if (auth != nullptr && auth->hasMechanisms) {
    bson_t mechanisms;
    BSON_APPEND_ARRAY_BEGIN(&reply, "saslSupportedMechs", &mechanisms);
    char indexKey[16];
    for (std::size_t i = 0; i < auth->mechanisms.size(); ++i) {
      const char* key = nullptr;
      bson_uint32_to_string(static_cast<std::uint32_t>(i), &key, indexKey, sizeof indexKey);
      bson_append_utf8(&mechanisms, key, -1, auth->mechanisms[i].data(), static_cast<int>(auth->mechanisms[i].size()));
    }
    bson_append_array_end(&reply, &mechanisms);
  }
  if (auth != nullptr && !auth->speculativeAuthenticate.empty()) {
    bson_t speculative;
    if (bson_init_static(&speculative, auth->speculativeAuthenticate.data(), auth->speculativeAuthenticate.size())) {
      BSON_APPEND_DOCUMENT(&reply, "speculativeAuthenticate", &speculative);
    }
  }
  BSON_APPEND_DOUBLE(&reply, "ok", 1.0);
  appendBson(out, &reply);
  bson_destroy(&reply);
}

void appendOkReply(std::vector<std::uint8_t>& out) {
  bson_t reply;
  bson_init(&reply);
  BSON_APPEND_DOUBLE(&reply, "ok", 1.0);
  appendBson(out, &reply);
  bson_destroy(&reply);
}

bool helloOffersMechanism(wire::Bytes body, std::string_view mechanism) {
  bson_iter_t it, child;
  if (!iterInit(it, body) || !bson_iter_find(&it, "saslSupportedMechs") || !BSON_ITER_HOLDS_ARRAY(&it) ||
      !bson_iter_recurse(&it, &child)) {
    return false;
  }
  while (bson_iter_next(&child)) {
    if (!BSON_ITER_HOLDS_UTF8(&child)) continue;
    std::uint32_t length = 0;
    const char* name = bson_iter_utf8(&child, &length);
    if (std::string_view(name, length) == mechanism) return true;
  }
  return false;
}

void appendUpstreamHello(std::vector<std::uint8_t>& out, std::string_view appName,
                         std::string_view saslSupportedMechs) {
  static const std::string osName = [] {
    utsname u{};
    return uname(&u) == 0 ? std::string(u.sysname) : std::string("unknown");
  }();
  bson_t hello, client, driver, os, app;
  bson_init(&hello);
  BSON_APPEND_INT32(&hello, "hello", 1);
  BSON_APPEND_UTF8(&hello, "$db", "admin");
  BSON_APPEND_DOCUMENT_BEGIN(&hello, "client", &client);
  if (!appName.empty()) {
    BSON_APPEND_DOCUMENT_BEGIN(&client, "application", &app);
    bson_append_utf8(&app, "name", -1, appName.data(), static_cast<int>(appName.size()));
    bson_append_document_end(&client, &app);
  }
  BSON_APPEND_DOCUMENT_BEGIN(&client, "driver", &driver);
  BSON_APPEND_UTF8(&driver, "name", "mongogate");
  BSON_APPEND_UTF8(&driver, "version", MONGOGATE_VERSION);
  bson_append_document_end(&client, &driver);
  BSON_APPEND_DOCUMENT_BEGIN(&client, "os", &os);
  BSON_APPEND_UTF8(&os, "type", osName.c_str());
  bson_append_document_end(&client, &os);
  bson_append_document_end(&hello, &client);
  if (!saslSupportedMechs.empty()) {
    bson_append_utf8(&hello, "saslSupportedMechs", -1, saslSupportedMechs.data(),
                     static_cast<int>(saslSupportedMechs.size()));
  }
  appendBson(out, &hello);
  bson_destroy(&hello);
}

bool readUpstreamHelloReply(wire::Bytes body, UpstreamLimits& out, std::string& error) {
  bson_iter_t it;
  if (!iterInit(it, body)) {
    error = "the upstream's hello reply is not valid BSON";
    return false;
  }
  UpstreamLimits limits = out;
  limits.logicalSessionTimeoutMinutes = -1;  // absent means no sessions
  bool ok = false;
  bool sawMaxWire = false;
  std::string errmsg;
  while (bson_iter_next(&it)) {
    const char* key = bson_iter_key(&it);
    if (std::strcmp(key, "ok") == 0) {
      ok = bson_iter_as_bool(&it);
    } else if (std::strcmp(key, "errmsg") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
      errmsg = bson_iter_utf8(&it, nullptr);
    } else if (std::strcmp(key, "minWireVersion") == 0) {
      limits.minWireVersion = asInt32(it);
    } else if (std::strcmp(key, "maxWireVersion") == 0) {
      limits.maxWireVersion = asInt32(it);
      sawMaxWire = true;
    } else if (std::strcmp(key, "maxBsonObjectSize") == 0) {
      limits.maxBsonObjectSize = asInt32(it);
    } else if (std::strcmp(key, "maxMessageSizeBytes") == 0) {
      limits.maxMessageSizeBytes = asInt32(it);
    } else if (std::strcmp(key, "maxWriteBatchSize") == 0) {
      limits.maxWriteBatchSize = asInt32(it);
    } else if (std::strcmp(key, "logicalSessionTimeoutMinutes") == 0 &&
               !BSON_ITER_HOLDS_NULL(&it)) {
      limits.logicalSessionTimeoutMinutes = asInt32(it);
    }
  }
  if (!ok) {
    error = errmsg.empty() ? "the upstream refused hello" : "the upstream refused hello: " + errmsg;
    return false;
  }
  if (!sawMaxWire) {
    error = "the upstream's hello reply has no maxWireVersion";
    return false;
  }
  limits.learned = true;
  out = limits;
  return true;
}

}  // namespace mongogate::proxy
