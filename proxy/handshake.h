// proxy/handshake.h — mongogate's own hello, and what it learns from the upstream's.
//
// SPEC §6: mongogate answers hello / isMaster / ismaster itself, as a mongos would
// (msg "isdbgrid"), with the limits of the upstream it forwards to. Client metadata is
// never forwarded and no upstream host appears in the reply.
// Reference: MongoDB specifications, mongodb-handshake/handshake.md.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "wire/message.h"

namespace mongogate::proxy {

// The limits an upstream announced in its hello reply.
struct UpstreamLimits {
  bool learned = false;  // false: defaults, the upstream has not answered yet
  std::int32_t minWireVersion = 0;
  std::int32_t maxWireVersion = 21;
  std::int32_t maxBsonObjectSize = 16 * 1024 * 1024;
  std::int32_t maxMessageSizeBytes = 48'000'000;
  std::int32_t maxWriteBatchSize = 100'000;
  std::int32_t logicalSessionTimeoutMinutes = 30;  // -1: the upstream has no sessions
};

// Shared by every worker thread; written on each upstream handshake, read on each
// client hello (rare on both sides, so a mutex is fine).
class UpstreamLimitsStore {
 public:
  explicit UpstreamLimitsStore(UpstreamLimits initial) : limits_(initial) {}
  UpstreamLimits get() const {
    std::lock_guard lock(mutex_);
    return limits_;
  }
  void set(const UpstreamLimits& limits) {
    std::lock_guard lock(mutex_);
    limits_ = limits;
  }

 private:
  mutable std::mutex mutex_;
  UpstreamLimits limits_;
};

// What mongogate needs to know about a client's hello.
struct ClientHello {
  std::string_view commandName;  // hello, isMaster or ismaster
  bool helloOk = false;          // the client sent helloOk: true
};

// What a client's hello asks of authentication (SPEC §6): "db.user" whose mechanisms
// the client wants to know, and the first SASL step sent ahead ({saslStart: 1,
// mechanism, payload, db}); empty when absent. Both borrow from the hello body.
struct ClientHelloAuth {
  std::string_view saslSupportedMechs;
  wire::Bytes speculativeAuthenticate;
};
bool readClientHelloAuth(wire::Bytes body, ClientHelloAuth& out);

// What the authentication layer adds to a hello reply.
struct HelloAuthFields {
  bool hasMechanisms = false;                        // answer saslSupportedMechs
  std::vector<std::string_view> mechanisms;          // e.g. SCRAM-SHA-256
  std::vector<std::uint8_t> speculativeAuthenticate; // BSON reply document; empty: none
};

// Reads the facts of a client's hello body (BSON). Returns false on malformed BSON.
bool readClientHello(wire::Bytes body, ClientHello& out);

// Appends to `out` the BSON body of mongogate's hello reply.
void appendHelloReply(std::vector<std::uint8_t>& out, const ClientHello& hello,
                      const UpstreamLimits& limits, std::int64_t connectionId,
                      const HelloAuthFields* auth = nullptr);

// Appends to `out` the BSON body {ok: 1.0}.
void appendOkReply(std::vector<std::uint8_t>& out);

// Appends to `out` the BSON body of the hello mongogate sends on a new upstream
// connection: {hello: 1, $db: "admin", client: {driver: mongogate, os, application?}}.
// With `saslSupportedMechs` ("<authSource>.<user>") the upstream is asked which SCRAM
// mechanisms that user has, as drivers do before authenticating.
void appendUpstreamHello(std::vector<std::uint8_t>& out, std::string_view appName,
                         std::string_view saslSupportedMechs = {});

// True when an upstream's hello reply lists `mechanism` in saslSupportedMechs.
bool helloOffersMechanism(wire::Bytes body, std::string_view mechanism);

// Reads an upstream's hello reply body. Returns false (and leaves `out` alone) unless
// the reply has ok: 1 and a maxWireVersion.
bool readUpstreamHelloReply(wire::Bytes body, UpstreamLimits& out, std::string& error);

}  // namespace mongogate::proxy
