// proxy/session_status.h — how a client exchange ended, and the one place that maps
// each ending to what the client sees and whether its connection survives.
// (Odyssey's od_frontend_cleanup switch is the model.)
#pragma once

#include <cstdint>
#include <string_view>

namespace mongogate::proxy {

enum class SessionStatus {
  kOk,
  kClientClosed,           // the client hung up between requests
  kClientIoError,          // the client's socket failed
  kBadFrame,               // malformed message from the client
  kFrameTooLarge,          // messageLength over the maximum
  kLegacyOpcode,           // OP_INSERT, OP_UPDATE, ...: removed in MongoDB 6.0
  kUnsupportedOpQuery,     // OP_QUERY for anything but the handshake
  kAuthFailed,             // authentication refused (client auth off, or a failed conversation)
  kRefused,                // the router refused the command (code and message from it)
  kPoolTimeout,            // no upstream connection within the wait-queue timeout
  kUpstreamUnavailable,    // no upstream connection could be opened
  kUpstreamIoError,        // the upstream failed during the exchange
  kMaxTimeExpired,         // no reply within the command's maxTimeMS plus the grace
  kRequestTimeout,         // no reply within topology.request_timeout_ms
};

struct StatusOutcome {
  bool replyError = false;  // send an error reply before anything else
  bool closeClient = false; // then close the client connection
  std::int32_t code = 0;
  std::string_view codeName;
  bool retryableLabel = false;  // carries RetryableWriteError: no work was done upstream
};

constexpr StatusOutcome outcomeOf(SessionStatus status) {
  switch (status) {
    case SessionStatus::kOk:
      return {};
    case SessionStatus::kClientClosed:
    case SessionStatus::kClientIoError:
    case SessionStatus::kBadFrame:
    case SessionStatus::kFrameTooLarge:
      return {false, true, 0, {}, false};
    // The driver sees an error reply, then a closed connection.
    case SessionStatus::kLegacyOpcode:
      return {true, true, 238, "NotImplemented", false};
    case SessionStatus::kUnsupportedOpQuery:
      return {true, false, 352, "UnsupportedOpQueryCommand", false};
    case SessionStatus::kAuthFailed:
      return {true, false, 18, "AuthenticationFailed", false};
    case SessionStatus::kRefused:  // code and codeName come from the router's Refusal
      return {true, false, 0, {}, false};
    // Nothing reached the upstream: safe for the driver to retry.
    case SessionStatus::kPoolTimeout:
      return {true, false, 262, "ExceededTimeLimit", true};
    case SessionStatus::kUpstreamUnavailable:
      return {true, false, 6, "HostUnreachable", true};
    // Part of the exchange may have happened: a closed connection is the network error
    // drivers expect, and they decide about retrying.
    case SessionStatus::kUpstreamIoError:
      return {false, true, 0, {}, false};
    // The request's deadline passed before any reply byte reached the client. The
    // upstream may have done the work: no retryable label, as the server's own
    // MaxTimeMSExpired carries none.
    case SessionStatus::kMaxTimeExpired:
      return {true, false, 50, "MaxTimeMSExpired", false};
    case SessionStatus::kRequestTimeout:
      return {true, false, 262, "ExceededTimeLimit", false};
  }
  return {false, true, 0, {}, false};
}

}  // namespace mongogate::proxy
