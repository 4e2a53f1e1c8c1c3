// proxy/client_auth.h — one client connection's authentication (SPEC §6).
//
// Promise: the session asks four questions and gets plain answers.
//   * may this command run before authentication? (only what mongod allows: hello,
//     ping, saslStart, saslContinue, logout, buildInfo, endSessions; else Unauthorized
//     "command X requires authentication");
//   * what does hello add? (saslSupportedMechs, and the reply to speculativeAuthenticate);
//   * the reply to saslStart / saslContinue / authenticate / logout;
//   * may the authenticated user run this routed command? (auth/scope.h)
// Modes: none — nothing is authenticated and any SASL attempt gets AuthenticationFailed
// with a message saying client authentication is off; users — SCRAM-SHA-256/SHA-1
// against the configured stored keys; relay — the conversation is carried out on a
// dedicated connection to the main upstream (never a pooled one, never reused), and the
// client is authenticated exactly when the upstream answers done with ok: 1.
// Failures answer AuthenticationFailed (18) without detail; the log names the user and
// why, never a password, proof, key or payload.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/scram.h"
#include "auth/user_store.h"
#include "proxy/asio.h"
#include "proxy/handshake.h"
#include "proxy/runtime_config.h"
#include "proxy/session_status.h"
#include "proxy/upstream_pool.h"
#include "router/routing.h"
#include "wire/message.h"

namespace mongogate::proxy {

class Worker;

class ClientAuth {
 public:
  ClientAuth(Worker& worker, const std::string& peer, std::int64_t connectionId);
  ~ClientAuth();
  ClientAuth(const ClientAuth&) = delete;
  ClientAuth& operator=(const ClientAuth&) = delete;

  // Whether clients must authenticate (users or relay mode, as currently configured).
  bool required() const;
  bool authenticated() const { return authenticated_; }

  // nullopt when `command` may run now; otherwise the Unauthorized refusal.
  std::optional<router::Refusal> refuseBeforeAuthentication(std::string_view command) const;

  // hello's saslSupportedMechs and speculativeAuthenticate answers.
  awaitable<void> answerHello(wire::Bytes helloBody, HelloAuthFields& out);

  // saslStart, saslContinue, authenticate, logout. kOk: `out` holds the reply body;
  // kAuthFailed: `errorMessage` holds what the client sees.
  awaitable<SessionStatus> handle(std::string_view command, wire::Bytes body, std::vector<std::uint8_t>& out,
                                  std::string& errorMessage);

  // Store scopes, after routing. nullopt when allowed.
  std::optional<router::Refusal> checkRoute(const router::RoutingConfig& config, const router::RoutedCommand& route,
                                            wire::Bytes body) const;
  std::optional<router::Refusal> checkStoreDrop(std::string_view database, std::string_view prefix) const;

 private:
  struct SaslRequest;
  awaitable<std::optional<std::vector<std::uint8_t>>> start(const SaslRequest& request);
  awaitable<std::optional<std::vector<std::uint8_t>>> next(const SaslRequest& request);
  std::optional<std::vector<std::uint8_t>> startLocal(const SaslRequest& request);
  std::optional<std::vector<std::uint8_t>> nextLocal(const SaslRequest& request);
  awaitable<std::optional<std::vector<std::uint8_t>>> relay(wire::Bytes body, bool starting);
  void succeed();
  void fail(std::string_view why);
  void resetConversation();

  Worker& worker_;
  const std::string& peer_;
  std::int64_t connectionId_;

  // The authenticated user: the configuration it was checked against (a reload does not
  // change a session's user or scope), its record (nullptr in relay mode for a user the
  // configuration does not list: unrestricted).
  bool authenticated_ = false;
  std::string user_;
  std::string userDatabase_;
  std::shared_ptr<const RuntimeConfig> users_;
  const auth::UserRecord* record_ = nullptr;

  // The conversation under way.
  enum class Step { kIdle, kAwaitFinal, kAwaitEmpty, kRelaying };
  Step step_ = Step::kIdle;
  std::optional<auth::ScramServer> server_;
  bool skipEmptyExchange_ = false;
  std::string pendingUser_;
  std::string pendingDatabase_;
  std::shared_ptr<const RuntimeConfig> pendingUsers_;
  std::unique_ptr<UpstreamConnection> relay_;  // dedicated, never pooled
  std::int32_t relayRequestId_ = 1;
};

}  // namespace mongogate::proxy
