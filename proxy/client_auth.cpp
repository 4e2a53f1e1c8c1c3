// proxy/client_auth.cpp — client authentication state machine (see client_auth.h).
//
// Reference: MongoDB specifications auth/auth.md (saslStart / saslContinue shapes,
// skipEmptyExchange, speculativeAuthenticate in hello).
#include "proxy/client_auth.h"

#include <bson/bson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

#include "auth/scope.h"
#include "proxy/worker.h"
#include "wire/builder.h"
#include "wire/op_msg.h"

namespace mongogate::proxy {
namespace {

constexpr std::string_view kFailed = "Authentication failed.";

// mongod runs these for a client that has not authenticated.
constexpr std::array<std::string_view, 10> kAllowedBeforeAuth{
    "hello", "isMaster", "ismaster", "ping", "saslStart", "saslContinue", "authenticate", "logout",
    "buildInfo", "endSessions"};

// {conversationId, done, payload} (+ ok: 1 for a command reply; hello embeds it without).
std::vector<std::uint8_t> saslReply(std::int32_t conversationId, bool done, std::string_view payload, bool withOk) {
  bson_t reply = BSON_INITIALIZER;
  BSON_APPEND_INT32(&reply, "conversationId", conversationId);
  BSON_APPEND_BOOL(&reply, "done", done);
  bson_append_binary(&reply, "payload", -1, BSON_SUBTYPE_BINARY, reinterpret_cast<const std::uint8_t*>(payload.data()),
                     static_cast<std::uint32_t>(payload.size()));
  if (withOk) BSON_APPEND_DOUBLE(&reply, "ok", 1.0);
  std::vector<std::uint8_t> out(bson_get_data(&reply), bson_get_data(&reply) + reply.len);
  bson_destroy(&reply);
  return out;
}

std::string_view utf8Of(const bson_iter_t& it) {
  std::uint32_t length = 0;
  const char* value = bson_iter_utf8(&it, &length);
  return {value, length};
}

// The bytes of a payload given as BinData (drivers) or as a string (older shells).
std::string_view payloadOf(const bson_iter_t& it) {
  if (BSON_ITER_HOLDS_BINARY(&it)) {
    bson_subtype_t subtype;
    std::uint32_t length = 0;
    const std::uint8_t* data = nullptr;
    bson_iter_binary(&it, &subtype, &length, &data);
    return {reinterpret_cast<const char*>(data), length};
  }
  if (BSON_ITER_HOLDS_UTF8(&it)) return utf8Of(it);
  return {};
}

// A SASL step as the upstream answered it (relay mode).
struct UpstreamStep {
  bool ok = false;
  bool done = false;
  std::int32_t conversationId = 1;
  std::string payload;
};

UpstreamStep readUpstreamStep(wire::Bytes body) {
  UpstreamStep step;
  bson_iter_t it;
  if (!bson_iter_init_from_data(&it, body.data(), body.size())) return step;
  while (bson_iter_next(&it)) {
    const std::string_view key = bson_iter_key(&it);
    if (key == "ok") {
      step.ok = bson_iter_as_bool(&it);
    } else if (key == "done") {
      step.done = bson_iter_as_bool(&it);
    } else if (key == "conversationId" && (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it))) {
      step.conversationId = static_cast<std::int32_t>(bson_iter_as_int64(&it));
    } else if (key == "payload") {
      step.payload = payloadOf(it);
    }
  }
  return step;
}

}  // namespace

// What a saslStart / saslContinue (or hello's speculativeAuthenticate) carries.
struct ClientAuth::SaslRequest {
  std::string_view mechanism;
  std::string_view payload;
  std::string_view database;  // $db (speculativeAuthenticate: its "db")
  bool skipEmptyExchange = false;
  wire::Bytes body;  // the command body, forwarded as it is in relay mode

  static std::optional<SaslRequest> read(wire::Bytes body, std::string_view databaseKey) {
    SaslRequest out;
    out.body = body;
    bson_iter_t it;
    if (!bson_iter_init_from_data(&it, body.data(), body.size())) return std::nullopt;
    while (bson_iter_next(&it)) {
      const std::string_view key = bson_iter_key(&it);
      if (key == "mechanism" && BSON_ITER_HOLDS_UTF8(&it)) {
        out.mechanism = utf8Of(it);
      } else if (key == "payload") {
        out.payload = payloadOf(it);
      } else if (key == databaseKey && BSON_ITER_HOLDS_UTF8(&it)) {
        out.database = utf8Of(it);
      } else if (key == "options" && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        bson_iter_t option;
        if (bson_iter_recurse(&it, &option) && bson_iter_find(&option, "skipEmptyExchange")) {
          out.skipEmptyExchange = bson_iter_as_bool(&option);
        }
      }
    }
    return out;
  }
};

ClientAuth::ClientAuth(Worker& worker, const std::string& peer, std::int64_t connectionId)
    : worker_(worker), peer_(peer), connectionId_(connectionId) {}

bool ClientAuth::required() const {
  return worker_.runtime().current()->config.auth.mode != config::AuthConfig::Mode::kNone;
}

ClientAuth::~ClientAuth() = default;  // a relay connection is closed, never pooled

std::optional<router::Refusal> ClientAuth::refuseBeforeAuthentication(std::string_view command) const {
  if (!required() || authenticated_) return std::nullopt;
  if (std::find(kAllowedBeforeAuth.begin(), kAllowedBeforeAuth.end(), command) != kAllowedBeforeAuth.end()) {
    return std::nullopt;
  }
  return router::Refusal{auth::kUnauthorized, "Unauthorized", "command " + std::string(command) + " requires authentication"};
}

awaitable<void> ClientAuth::answerHello(wire::Bytes helloBody, HelloAuthFields& out) {
  const std::shared_ptr<const RuntimeConfig> runtime = worker_.runtime().current();
  const config::AuthConfig::Mode mode = runtime->config.auth.mode;
  if (mode == config::AuthConfig::Mode::kNone) co_return;
  ClientHelloAuth hello;
  if (!readClientHelloAuth(helloBody, hello)) co_return;
  if (!hello.saslSupportedMechs.empty()) {
    if (mode == config::AuthConfig::Mode::kRelay) {
      // The upstream decides; both are offered and the driver prefers SCRAM-SHA-256.
      out.hasMechanisms = true;
      out.mechanisms = {auth::mechanismName(auth::Mechanism::kScramSha1),
                        auth::mechanismName(auth::Mechanism::kScramSha256)};
    } else {
      const std::string_view name = hello.saslSupportedMechs;
      const std::size_t dot = name.find('.');
      if (dot != std::string_view::npos) {
        if (const auth::UserRecord* user =
                auth::findUser(runtime->config.auth.users, name.substr(0, dot), name.substr(dot + 1))) {
          out.hasMechanisms = true;
          if (user->scramSha1) out.mechanisms.push_back(auth::mechanismName(auth::Mechanism::kScramSha1));
          if (user->scramSha256) out.mechanisms.push_back(auth::mechanismName(auth::Mechanism::kScramSha256));
        }
      }
    }
  }
  if (!hello.speculativeAuthenticate.empty()) {
    auto request = SaslRequest::read(hello.speculativeAuthenticate, "db");
    if (!request) co_return;
    std::vector<std::uint8_t> relayBody;
    if (mode == config::AuthConfig::Mode::kRelay) {
      // {saslStart, mechanism, payload, options, db} → the same with $db, as a command.
      bson_t body = BSON_INITIALIZER;
      bson_iter_t it;
      if (bson_iter_init_from_data(&it, hello.speculativeAuthenticate.data(), hello.speculativeAuthenticate.size())) {
        while (bson_iter_next(&it)) {
          if (std::string_view(bson_iter_key(&it)) != "db") bson_append_iter(&body, nullptr, 0, &it);
        }
      }
      bson_append_utf8(&body, "$db", -1, request->database.data(), static_cast<int>(request->database.size()));
      relayBody.assign(bson_get_data(&body), bson_get_data(&body) + body.len);
      bson_destroy(&body);
      request->body = relayBody;
    }
    // A failed speculative step simply leaves the field out: the driver then
    // authenticates with saslStart, which fails properly.
    if (auto reply = co_await start(*request)) out.speculativeAuthenticate = std::move(*reply);
  }
}

awaitable<SessionStatus> ClientAuth::handle(std::string_view command, wire::Bytes body, std::vector<std::uint8_t>& out,
                                            std::string& errorMessage) {
  if (command == "logout") {
    if (authenticated_) spdlog::info("client {} (conn{}): user '{}' logged out", peer_, connectionId_, user_);
    authenticated_ = false;
    user_.clear();
    userDatabase_.clear();
    record_ = nullptr;
    users_.reset();
    resetConversation();
    bson_t reply = BSON_INITIALIZER;
    BSON_APPEND_DOUBLE(&reply, "ok", 1.0);
    out.assign(bson_get_data(&reply), bson_get_data(&reply) + reply.len);
    bson_destroy(&reply);
    co_return SessionStatus::kOk;
  }
  if (!required()) {
    spdlog::info("client {} (conn{}): refused {}: client authentication is not enabled", peer_, connectionId_,
                 command);
    errorMessage =
        "Authentication failed: mongogate does not authenticate clients (auth.mode is none); remove the "
        "credentials from the connection string, or set auth.mode to users or relay";
    co_return SessionStatus::kAuthFailed;
  }
  errorMessage = kFailed;
  if (command == "authenticate") {
    fail("the authenticate command (MONGODB-X509, MONGODB-CR) is not supported; use SCRAM");
    co_return SessionStatus::kAuthFailed;
  }
  auto request = SaslRequest::read(body, "$db");
  if (!request) {
    fail("malformed " + std::string(command));
    co_return SessionStatus::kAuthFailed;
  }
  std::optional<std::vector<std::uint8_t>> reply;
  if (command == "saslStart") {
    reply = co_await start(*request);
  } else {
    reply = co_await next(*request);
  }
  if (!reply) {
    if (step_ == Step::kRelaying && !relay_) {
      // The upstream could not be reached: not the client's fault, and retryable.
      resetConversation();
      errorMessage = "mongogate: the main upstream is unreachable, so the client cannot be authenticated now";
      co_return SessionStatus::kUpstreamUnavailable;
    }
    co_return SessionStatus::kAuthFailed;
  }
  // Command replies carry ok: 1; start()/next() build them without it for hello.
  bson_t doc;
  if (!bson_init_static(&doc, reply->data(), reply->size())) co_return SessionStatus::kAuthFailed;
  bson_t withOk = BSON_INITIALIZER;
  bson_concat(&withOk, &doc);
  BSON_APPEND_DOUBLE(&withOk, "ok", 1.0);
  out.assign(bson_get_data(&withOk), bson_get_data(&withOk) + withOk.len);
  bson_destroy(&withOk);
  co_return SessionStatus::kOk;
}

awaitable<std::optional<std::vector<std::uint8_t>>> ClientAuth::start(const SaslRequest& request) {
  resetConversation();
  const auto mechanism = auth::parseMechanism(request.mechanism);
  if (!mechanism) {
    fail("mechanism '" + std::string(request.mechanism.substr(0, 32)) + "' is not supported");
    co_return std::nullopt;
  }
  pendingDatabase_ = request.database.empty() ? "admin" : std::string(request.database);
  pendingUser_ = auth::clientFirstUser(request.payload).value_or("");
  pendingUsers_ = worker_.runtime().current();
  if (pendingUsers_->config.auth.mode == config::AuthConfig::Mode::kRelay) co_return co_await relay(request.body, true);
  co_return startLocal(request);
}

awaitable<std::optional<std::vector<std::uint8_t>>> ClientAuth::next(const SaslRequest& request) {
  if (step_ == Step::kRelaying) co_return co_await relay(request.body, false);
  co_return nextLocal(request);
}

std::optional<std::vector<std::uint8_t>> ClientAuth::startLocal(const SaslRequest& request) {
  const auth::Mechanism mechanism = *auth::parseMechanism(request.mechanism);
  server_.emplace(mechanism);
  const std::vector<auth::UserRecord>& users = pendingUsers_->config.auth.users;
  const std::string& database = pendingDatabase_;
  if (const auth::UserRecord* record = auth::findUser(users, database, pendingUser_);
      record && !record->credentials(mechanism)) {
    // As mongod: a user without keys for this mechanism fails at once (a driver that
    // speculated with SCRAM-SHA-256 then negotiates SCRAM-SHA-1 from saslSupportedMechs).
    fail("the user has no " + std::string(auth::mechanismName(mechanism)) + " keys");
    return std::nullopt;
  }
  auth::StepResult step = server_->start(request.payload, [&](std::string_view user) {
    const auth::UserRecord* record = auth::findUser(users, database, user);
    return record ? record->credentials(mechanism) : std::nullopt;
  });
  if (step.status != auth::StepStatus::kContinue) {
    fail(step.error);
    return std::nullopt;
  }
  pendingUser_ = server_->user();
  skipEmptyExchange_ = request.skipEmptyExchange;
  step_ = Step::kAwaitFinal;
  return saslReply(1, false, step.payload, false);
}

std::optional<std::vector<std::uint8_t>> ClientAuth::nextLocal(const SaslRequest& request) {
  if (step_ == Step::kAwaitEmpty) {
    succeed();
    return saslReply(1, true, {}, false);
  }
  if (step_ != Step::kAwaitFinal || !server_) {
    fail("saslContinue without a conversation under way");
    return std::nullopt;
  }
  auth::StepResult step = server_->finish(request.payload);
  if (step.status != auth::StepStatus::kDone) {
    fail(step.error);
    return std::nullopt;
  }
  if (!skipEmptyExchange_) {
    // The client checks the server's signature, then sends one empty message.
    step_ = Step::kAwaitEmpty;
    return saslReply(1, false, step.payload, false);
  }
  succeed();
  return saslReply(1, true, step.payload, false);
}

awaitable<std::optional<std::vector<std::uint8_t>>> ClientAuth::relay(wire::Bytes body, bool starting) {
  if (starting) {
    step_ = Step::kRelaying;
    AcquireResult opened = co_await worker_.mainPool().openDedicated();
    if (opened.status != AcquireStatus::kOk) {
      spdlog::warn("client {} (conn{}): cannot relay authentication to the main upstream: {}", peer_, connectionId_,
                   opened.error);
      co_return std::nullopt;  // step_ kRelaying without a connection: unreachable
    }
    relay_ = std::move(opened.connection);
  }
  if (!relay_) {
    fail("saslContinue without a conversation under way");
    co_return std::nullopt;
  }
  std::vector<std::uint8_t> frame;
  wire::appendOpMsg(frame, relayRequestId_++, 0, 0, body);
  auto [writeError, written] = co_await asio::async_write(relay_->stream, asio::buffer(frame), nothrow);
  (void)written;
  std::optional<UpstreamStep> step;
  if (!writeError && co_await relay_->reader.next(relay_->stream) == ReadStatus::kOk) {
    auto parsed = wire::parseOpMsg(relay_->reader.frame());
    if (parsed.ok()) step = readUpstreamStep(parsed.value.body);
  }
  if (!step) {
    spdlog::warn("client {} (conn{}): the main upstream failed during relayed authentication", peer_, connectionId_);
    relay_.reset();
    co_return std::nullopt;
  }
  if (!step->ok) {
    fail("the main upstream refused the credentials");
    co_return std::nullopt;
  }
  std::vector<std::uint8_t> reply = saslReply(step->conversationId, step->done, step->payload, false);
  if (step->done) {
    succeed();  // closes the dedicated connection: it is authenticated as this user now
  }
  co_return reply;
}

void ClientAuth::succeed() {
  authenticated_ = true;
  user_ = std::move(pendingUser_);
  userDatabase_ = std::move(pendingDatabase_);
  users_ = std::move(pendingUsers_);
  record_ = users_ ? auth::findUser(users_->config.auth.users, userDatabase_, user_) : nullptr;
  const std::string_view mechanism = server_ ? auth::mechanismName(server_->mechanism()) : "relayed to main";
  spdlog::info("client {} (conn{}): authenticated as '{}' on '{}' ({})", peer_, connectionId_, user_, userDatabase_,
               mechanism);
  resetConversation();
}

void ClientAuth::fail(std::string_view why) {
  // The user name is fine to log; the reason never holds a secret (auth/scram.h).
  spdlog::info("client {} (conn{}): authentication failed for user '{}' on '{}': {}", peer_, connectionId_,
               pendingUser_, pendingDatabase_.empty() ? "admin" : pendingDatabase_, why);
  resetConversation();
}

void ClientAuth::resetConversation() {
  step_ = Step::kIdle;
  server_.reset();
  skipEmptyExchange_ = false;
  relay_.reset();
}

std::optional<router::Refusal> ClientAuth::checkRoute(const router::RoutingConfig& config,
                                                      const router::RoutedCommand& route, wire::Bytes body) const {
  if (!required() || record_ == nullptr || record_->scope.unrestricted()) return std::nullopt;
  return auth::checkScope(record_->scope, user_, config, route, auth::commandWrites(route.commandName, body));
}

std::optional<router::Refusal> ClientAuth::checkStoreDrop(std::string_view database, std::string_view prefix) const {
  if (!required() || record_ == nullptr) return std::nullopt;
  return auth::checkStoreDrop(record_->scope, user_, database, prefix);
}

}  // namespace mongogate::proxy
