// mongogate's own hello (SPEC §6): mongos-like, the upstream's limits, no host names.
#include <bson/bson.h>
#include <gtest/gtest.h>

#include "proxy/handshake.h"
#include "router/command_table.h"

namespace mongogate::proxy {
namespace {

struct Doc {
  explicit Doc(const std::vector<std::uint8_t>& bytes) {
    EXPECT_TRUE(bson_init_static(&doc, bytes.data(), bytes.size()));
  }
  bool has(const char* key) const {
    bson_iter_t it;
    return bson_iter_init_find(&it, &doc, key);
  }
  bson_iter_t at(const char* key) const {
    bson_iter_t it;
    EXPECT_TRUE(bson_iter_init_find(&it, &doc, key)) << key;
    return it;
  }
  std::int64_t integer(const char* key) const {
    bson_iter_t it = at(key);
    return bson_iter_as_int64(&it);
  }
  bool boolean(const char* key) const {
    bson_iter_t it = at(key);
    return bson_iter_as_bool(&it);
  }
  std::string text(const char* key) const {
    bson_iter_t it = at(key);
    return BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, nullptr) : "";
  }
  bson_t doc;
};

std::vector<std::uint8_t> bytesOf(bson_t* b) {
  std::vector<std::uint8_t> v(bson_get_data(b), bson_get_data(b) + b->len);
  bson_destroy(b);
  return v;
}

TEST(HandshakeTest, HelloReplyLooksLikeMongos) {
  UpstreamLimits limits;
  limits.learned = true;
  limits.minWireVersion = 6;
  limits.maxWireVersion = 17;
  limits.maxBsonObjectSize = 1000;
  limits.maxMessageSizeBytes = 2000;
  limits.maxWriteBatchSize = 3000;
  limits.logicalSessionTimeoutMinutes = 15;
  std::vector<std::uint8_t> out;
  appendHelloReply(out, ClientHello{"hello", true}, limits, 42);
  Doc reply(out);
  EXPECT_EQ(reply.text("msg"), "isdbgrid");
  EXPECT_TRUE(reply.boolean("isWritablePrimary"));
  EXPECT_FALSE(reply.has("ismaster"));
  EXPECT_TRUE(reply.boolean("helloOk"));
  EXPECT_EQ(reply.integer("minWireVersion"), 6);
  EXPECT_EQ(reply.integer("maxWireVersion"), 17);
  EXPECT_EQ(reply.integer("maxBsonObjectSize"), 1000);
  EXPECT_EQ(reply.integer("maxMessageSizeBytes"), 2000);
  EXPECT_EQ(reply.integer("maxWriteBatchSize"), 3000);
  EXPECT_EQ(reply.integer("logicalSessionTimeoutMinutes"), 15);
  EXPECT_EQ(reply.integer("connectionId"), 42);
  EXPECT_EQ(reply.integer("ok"), 1);
  EXPECT_TRUE(reply.has("localTime"));
  // Never reveal upstream hosts or replica-set topology.
  for (const char* key : {"hosts", "me", "primary", "setName", "passives", "arbiters"}) {
    EXPECT_FALSE(reply.has(key)) << key;
  }
}

TEST(HandshakeTest, LegacySpellingsAnswerIsmaster) {
  for (const char* name : {"isMaster", "ismaster"}) {
    std::vector<std::uint8_t> out;
    appendHelloReply(out, ClientHello{name, false}, UpstreamLimits{}, 1);
    Doc reply(out);
    EXPECT_TRUE(reply.boolean("ismaster")) << name;
    EXPECT_FALSE(reply.has("isWritablePrimary")) << name;
    EXPECT_FALSE(reply.has("helloOk")) << name;
  }
}

TEST(HandshakeTest, NoSessionsMeansNoSessionTimeout) {
  UpstreamLimits limits;
  limits.logicalSessionTimeoutMinutes = -1;
  std::vector<std::uint8_t> out;
  appendHelloReply(out, ClientHello{"hello", false}, limits, 1);
  EXPECT_FALSE(Doc(out).has("logicalSessionTimeoutMinutes"));
}

TEST(HandshakeTest, ReadsClientHello) {
  bson_t b = BSON_INITIALIZER;
  BSON_APPEND_INT32(&b, "isMaster", 1);
  BSON_APPEND_BOOL(&b, "helloOk", true);
  BSON_APPEND_UTF8(&b, "$db", "admin");
  auto bytes = bytesOf(&b);
  ClientHello hello;
  ASSERT_TRUE(readClientHello(bytes, hello));
  EXPECT_EQ(hello.commandName, "isMaster");
  EXPECT_TRUE(hello.helloOk);
}

// OP_COMPRESSED spec, handshake amendment: the reply lists the compressors both sides
// accept, in the client's order; nothing when there is none in common.
TEST(HandshakeTest, NegotiatesCompressionInTheClientsOrder) {
  bson_t b = BSON_INITIALIZER;
  BSON_APPEND_INT32(&b, "hello", 1);
  bson_t names;
  BSON_APPEND_ARRAY_BEGIN(&b, "compression", &names);
  BSON_APPEND_UTF8(&names, "0", "lz4");  // unknown: skipped
  BSON_APPEND_UTF8(&names, "1", "zstd");
  BSON_APPEND_UTF8(&names, "2", "zlib");
  BSON_APPEND_UTF8(&names, "3", "snappy");
  bson_append_array_end(&b, &names);
  auto bytes = bytesOf(&b);
  ClientHello hello;
  ASSERT_TRUE(readClientHello(bytes, hello));
  ASSERT_EQ(hello.compressionCount, 3u);

  const wire::Compressor enabled[] = {wire::Compressor::kSnappy, wire::Compressor::kZlib};
  std::vector<std::uint8_t> out;
  appendHelloReply(out, hello, UpstreamLimits{}, 1, nullptr, HelloExtras{enabled, nullptr});
  bson_t doc;
  ASSERT_TRUE(bson_init_static(&doc, out.data(), out.size()));
  bson_iter_t it, child;
  ASSERT_TRUE(bson_iter_init_find(&it, &doc, "compression") && bson_iter_recurse(&it, &child));
  std::vector<std::string> agreed;
  while (bson_iter_next(&child)) agreed.emplace_back(bson_iter_utf8(&child, nullptr));
  EXPECT_EQ(agreed, (std::vector<std::string>{"zlib", "snappy"}));

  out.clear();
  appendHelloReply(out, hello, UpstreamLimits{}, 1, nullptr, HelloExtras{});  // compression off
  EXPECT_FALSE(Doc(out).has("compression"));
}

TEST(HandshakeTest, HandshakeAndAuthenticationAreNeverCompressed) {
  for (const char* name : {"hello", "isMaster", "ismaster", "saslStart", "saslContinue", "authenticate",
                           "getnonce", "createUser", "updateUser", "copydb"}) {
    EXPECT_TRUE(compressionForbidden(name)) << name;
  }
  for (const char* name : {"find", "insert", "ping", "getMore"}) EXPECT_FALSE(compressionForbidden(name)) << name;
}

// Load-balancer spec: a loadBalanced hello gets the service's id; others do not.
TEST(HandshakeTest, LoadBalancedHelloGetsServiceId) {
  bson_oid_t service;
  bson_oid_init(&service, nullptr);
  ClientHello hello{"hello", false};
  hello.loadBalanced = true;
  std::vector<std::uint8_t> out;
  appendHelloReply(out, hello, UpstreamLimits{}, 1, nullptr, HelloExtras{{}, &service});
  bson_t doc;
  ASSERT_TRUE(bson_init_static(&doc, out.data(), out.size()));
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init_find(&it, &doc, "serviceId") && BSON_ITER_HOLDS_OID(&it));
  EXPECT_EQ(bson_oid_compare(bson_iter_oid(&it), &service), 0);
  hello.loadBalanced = false;
  out.clear();
  appendHelloReply(out, hello, UpstreamLimits{}, 1, nullptr, HelloExtras{{}, &service});
  EXPECT_FALSE(Doc(out).has("serviceId"));
}

TEST(HandshakeTest, UpstreamHelloCarriesMongogateMetadataOnly) {
  std::vector<std::uint8_t> out;
  appendUpstreamHello(out, "pos-app");
  bson_t doc;
  ASSERT_TRUE(bson_init_static(&doc, out.data(), out.size()));
  bson_iter_t it;
  ASSERT_TRUE(bson_iter_init(&it, &doc));
  ASSERT_TRUE(bson_iter_next(&it));
  EXPECT_STREQ(bson_iter_key(&it), "hello");
  bson_iter_t found;
  ASSERT_TRUE(bson_iter_init(&found, &doc) && bson_iter_find_descendant(&found, "client.driver.name", &it));
  EXPECT_STREQ(bson_iter_utf8(&it, nullptr), "mongogate");
  ASSERT_TRUE(bson_iter_init(&found, &doc) && bson_iter_find_descendant(&found, "client.application.name", &it));
  EXPECT_STREQ(bson_iter_utf8(&it, nullptr), "pos-app");
  ASSERT_TRUE(bson_iter_init(&found, &doc) && bson_iter_find_descendant(&found, "$db", &it));
  EXPECT_STREQ(bson_iter_utf8(&it, nullptr), "admin");
}

TEST(HandshakeTest, LearnsLimitsFromUpstreamReply) {
  bson_t b = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&b, "isWritablePrimary", true);
  BSON_APPEND_INT32(&b, "maxBsonObjectSize", 111);
  BSON_APPEND_INT32(&b, "maxMessageSizeBytes", 222);
  BSON_APPEND_INT32(&b, "maxWriteBatchSize", 333);
  BSON_APPEND_INT32(&b, "logicalSessionTimeoutMinutes", 7);
  BSON_APPEND_INT32(&b, "minWireVersion", 0);
  BSON_APPEND_INT64(&b, "maxWireVersion", 13);
  BSON_APPEND_DOUBLE(&b, "ok", 1.0);
  auto bytes = bytesOf(&b);
  UpstreamLimits limits;
  std::string error;
  ASSERT_TRUE(readUpstreamHelloReply(bytes, limits, error)) << error;
  EXPECT_TRUE(limits.learned);
  EXPECT_EQ(limits.maxWireVersion, 13);
  EXPECT_EQ(limits.maxBsonObjectSize, 111);
  EXPECT_EQ(limits.maxMessageSizeBytes, 222);
  EXPECT_EQ(limits.maxWriteBatchSize, 333);
  EXPECT_EQ(limits.logicalSessionTimeoutMinutes, 7);
}

TEST(HandshakeTest, RefusedUpstreamHelloKeepsDefaults) {
  bson_t b = BSON_INITIALIZER;
  BSON_APPEND_DOUBLE(&b, "ok", 0.0);
  BSON_APPEND_UTF8(&b, "errmsg", "no such command: 'hello'");
  auto bytes = bytesOf(&b);
  UpstreamLimits limits;
  std::string error;
  EXPECT_FALSE(readUpstreamHelloReply(bytes, limits, error));
  EXPECT_FALSE(limits.learned);
  EXPECT_NE(error.find("no such command"), std::string::npos);
  const std::uint8_t garbage[] = {1, 2, 3};
  EXPECT_FALSE(readUpstreamHelloReply(garbage, limits, error));
}

TEST(CommandTableTest, Dispositions) {
  using router::CommandDisposition;
  EXPECT_EQ(router::classifyCommand("hello"), CommandDisposition::kHandshake);
  EXPECT_EQ(router::classifyCommand("isMaster"), CommandDisposition::kHandshake);
  EXPECT_EQ(router::classifyCommand("ismaster"), CommandDisposition::kHandshake);
  EXPECT_EQ(router::classifyCommand("ISMASTER"), CommandDisposition::kForward);
  EXPECT_EQ(router::classifyCommand("ping"), CommandDisposition::kPing);
  EXPECT_EQ(router::classifyCommand("saslStart"), CommandDisposition::kAuth);
  EXPECT_EQ(router::classifyCommand("saslContinue"), CommandDisposition::kAuth);
  EXPECT_EQ(router::classifyCommand("find"), CommandDisposition::kForward);
  EXPECT_EQ(router::classifyCommand("endSessions"), CommandDisposition::kForward);
  EXPECT_EQ(router::classifyCommand(""), CommandDisposition::kForward);
}

}  // namespace
}  // namespace mongogate::proxy
