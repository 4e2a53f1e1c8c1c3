#include "proxy/upstream_connect.h"

#include <bson/bson.h>

#include <atomic>
#include <string_view>

#include "auth/scram.h"

#include "wire/builder.h"
#include "wire/op_msg.h"

namespace mongogate::proxy {

using namespace asio::experimental::awaitable_operators;

namespace {

std::atomic<std::int32_t> nextRequestId{1};

// {saslStart|saslContinue, ..., payload: BinData} for the auth database.
std::vector<std::uint8_t> saslCommand(const char* name, std::int32_t conversationId, const std::string& mechanism,
                                      const std::string& payload, const std::string& database) {
  bson_t command;
  bson_init(&command);
  BSON_APPEND_INT32(&command, name, 1);
  if (conversationId == 0) {
    BSON_APPEND_UTF8(&command, "mechanism", mechanism.c_str());
  } else {
    BSON_APPEND_INT32(&command, "conversationId", conversationId);
  }
  bson_append_binary(&command, "payload", -1, BSON_SUBTYPE_BINARY, reinterpret_cast<const std::uint8_t*>(payload.data()),
                     static_cast<std::uint32_t>(payload.size()));
  if (conversationId == 0) {
    bson_t options;
    BSON_APPEND_DOCUMENT_BEGIN(&command, "options", &options);
    BSON_APPEND_BOOL(&options, "skipEmptyExchange", true);
    bson_append_document_end(&command, &options);
  }
  bson_append_utf8(&command, "$db", -1, database.data(), static_cast<int>(database.size()));
  std::vector<std::uint8_t> body(bson_get_data(&command), bson_get_data(&command) + command.len);
  bson_destroy(&command);
  return body;
}

// What a SASL reply says. `error` is the server's errmsg (it names no secret).
struct SaslReply {
  bool ok = false;
  bool done = false;
  std::int32_t conversationId = 0;
  std::string payload;
  std::string error;
};

SaslReply readSaslReply(wire::Bytes body) {
  SaslReply out;
  bson_iter_t it;
  if (!bson_iter_init_from_data(&it, body.data(), body.size())) {
    out.error = "the reply is not valid BSON";
    return out;
  }
  while (bson_iter_next(&it)) {
    const std::string_view key = bson_iter_key(&it);
    if (key == "ok") {
      out.ok = bson_iter_as_bool(&it);
    } else if (key == "done") {
      out.done = bson_iter_as_bool(&it);
    } else if (key == "conversationId") {
      out.conversationId = static_cast<std::int32_t>(bson_iter_as_int64(&it));
    } else if (key == "errmsg" && BSON_ITER_HOLDS_UTF8(&it)) {
      out.error = bson_iter_utf8(&it, nullptr);
    } else if (key == "payload" && BSON_ITER_HOLDS_BINARY(&it)) {
      bson_subtype_t subtype;
      std::uint32_t length = 0;
      const std::uint8_t* data = nullptr;
      bson_iter_binary(&it, &subtype, &length, &data);
      out.payload.assign(reinterpret_cast<const char*>(data), length);
    }
  }
  if (!out.ok && out.error.empty()) out.error = "the server refused";
  return out;
}

// One SCRAM conversation (RFC 5802 via auth::ScramClient) on a fresh connection.
// Returns "" or why it failed; never the password, a proof or a key.
awaitable<std::string> scramAuthenticate(UpstreamConnection& connection, const config::UpstreamAuthConfig& credentials,
                                         auth::Mechanism mechanism) {
  auth::ScramClient client(mechanism, credentials.user, credentials.password);
  if (!client.error().empty()) co_return client.error();
  const std::string mechanismName(auth::mechanismName(mechanism));
  wire::Bytes replyBody;
  auto exchange = [&](const char* name, std::int32_t conversationId,
                      const std::string& payload) -> awaitable<SaslReply> {
    SaslReply reply;
    if (std::string error = co_await runUpstreamCommand(
            connection, saslCommand(name, conversationId, mechanismName, payload, credentials.source), replyBody);
        !error.empty()) {
      reply.error = error;
      co_return reply;
    }
    co_return readSaslReply(replyBody);
  };
  SaslReply started = co_await exchange("saslStart", 0, client.first());
  if (!started.ok) co_return started.error;
  auth::StepResult proof = client.final(started.payload);
  if (proof.status == auth::StepStatus::kFailed) co_return proof.error;
  SaslReply finished = co_await exchange("saslContinue", started.conversationId, proof.payload);
  if (!finished.ok) co_return finished.error;
  auth::StepResult verified = client.verify(finished.payload);
  if (verified.status == auth::StepStatus::kFailed) co_return verified.error;
  // Servers that ignore skipEmptyExchange want one more, empty, round.
  for (int round = 0; !finished.done && round < 2; ++round) {
    finished = co_await exchange("saslContinue", started.conversationId, std::string());
    if (!finished.ok) co_return finished.error;
  }
  if (!finished.done) co_return "the server did not finish the conversation";
  co_return std::string();
}

AcquireResult failed(ConnectFailure failure, std::string error) {
  AcquireResult result;
  result.status = AcquireStatus::kConnectFailed;
  result.failure = failure;
  result.error = std::move(error);
  return result;
}

awaitable<AcquireResult> open(asio::io_context& ioc, const UpstreamConnectOptions& options,
                              const config::HostPort& server, UpstreamLimits& learned) {
  const config::UpstreamConfig& upstream = *options.upstream;
  tcp::resolver resolver(ioc);
  auto [resolveError, endpoints] =
      co_await resolver.async_resolve(server.host, std::to_string(server.port), nothrow);
  if (resolveError) co_return failed(ConnectFailure::kResolve, "cannot resolve the host: " + resolveError.message());
  auto connection = std::make_unique<UpstreamConnection>(ioc.get_executor(), *options.buffers, options.maxMessageSize);
  auto [connectError, endpoint] = co_await asio::async_connect(connection->stream.socket(), endpoints, nothrow);
  (void)endpoint;
  if (connectError) co_return failed(ConnectFailure::kConnect, "cannot connect: " + connectError.message());
  error_code ignored;
  connection->stream.socket().set_option(tcp::no_delay(true), ignored);

  if (options.tls) {
    // tlsAllowInvalidCertificates implies any hostname (the connection string spec).
    const bool verifyHostname = !upstream.tls.allowInvalidHostnames && !upstream.tls.allowInvalidCertificates;
    connection->stream.enableTlsClient(*options.tls, server.host, verifyHostname);
    if (error_code ec = co_await connection->stream.handshake(ssl::stream_base::client)) {
      const std::string why = connection->stream.verifyError();
      co_return failed(ConnectFailure::kTls, "TLS handshake failed: " +
                                                 (why.empty() ? ec.message() : "certificate verify failed (" + why + ")"));
    }
  }

  // mongogate's own hello: its metadata, never a client's.
  const config::UpstreamAuthConfig& credentials = upstream.auth;
  const bool authenticate = options.authenticate && !credentials.user.empty();
  std::vector<std::uint8_t> hello;
  appendUpstreamHello(hello, upstream.appName,
                      authenticate && credentials.mechanism.empty() ? credentials.source + "." + credentials.user
                                                                    : std::string());
  wire::Bytes reply;
  if (std::string error = co_await runUpstreamCommand(*connection, hello, reply); !error.empty()) {
    co_return failed(ConnectFailure::kHandshake, "handshake failed: " + error);
  }
  UpstreamLimits limits = learned;
  std::string error;
  if (!readUpstreamHelloReply(reply, limits, error)) co_return failed(ConnectFailure::kHandshake, error);
  learned = limits;

  if (authenticate) {
    // The URI's mechanism, else as drivers negotiate: SCRAM-SHA-256 when the server
    // lists it for this user, else SCRAM-SHA-1.
    auth::Mechanism mechanism = auth::Mechanism::kScramSha1;
    if (!credentials.mechanism.empty()) {
      mechanism = auth::parseMechanism(credentials.mechanism).value_or(auth::Mechanism::kScramSha256);
    } else if (helloOffersMechanism(reply, "SCRAM-SHA-256")) {
      mechanism = auth::Mechanism::kScramSha256;
    }
    if (std::string why = co_await scramAuthenticate(*connection, credentials, mechanism); !why.empty()) {
      co_return failed(ConnectFailure::kAuth, "authentication with " + std::string(auth::mechanismName(mechanism)) +
                                                  " failed: " + why);
    }
  }

  AcquireResult result;
  result.connection = std::move(connection);
  result.connection->createdAt = std::chrono::steady_clock::now();
  co_return result;
}

}  // namespace

awaitable<std::string> runUpstreamCommand(UpstreamConnection& connection, const std::vector<std::uint8_t>& body,
                                          wire::Bytes& reply) {
  std::vector<std::uint8_t> frame;
  wire::appendOpMsg(frame, nextRequestId.fetch_add(1, std::memory_order_relaxed), 0, 0, body);
  auto [writeError, written] = co_await asio::async_write(connection.stream, asio::buffer(frame), nothrow);
  (void)written;
  if (writeError) co_return writeError.message();
  if (co_await connection.reader.next(connection.stream) != ReadStatus::kOk) co_return "no valid reply";
  auto parsed = wire::parseOpMsg(connection.reader.frame());
  if (!parsed.ok()) co_return "bad reply (" + std::string(wire::describe(parsed.error.status)) + ")";
  reply = parsed.value.body;
  co_return std::string();
}

awaitable<AcquireResult> openUpstreamConnection(asio::io_context& ioc, const UpstreamConnectOptions& options,
                                                const config::HostPort& server, UpstreamLimits& learned) {
  asio::steady_timer deadline(ioc);
  deadline.expires_after(options.timeout);
  auto outcome = co_await (open(ioc, options, server, learned) || deadline.async_wait(nothrow));
  if (outcome.index() == 0) co_return std::move(std::get<0>(outcome));
  co_return failed(ConnectFailure::kTimeout, "connect and handshake timed out after " +
                                                 std::to_string(options.timeout.count()) + " ms");
}

}  // namespace mongogate::proxy
