#include "proxy/client_session.h"

#include <bson/bson.h>
#include <spdlog/spdlog.h>

#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "proxy/admin_glue.h"
#include "proxy/client_auth.h"
#include "proxy/request_log.h"
#include "proxy/session_status.h"
#include "proxy/sessions.h"
#include "proxy/topology.h"
#include "router/command_table.h"
#include "router/cursor_batches.h"
#include "router/routing.h"
#include "wire/bson_walk.h"
#include "wire/builder.h"
#include "wire/compression.h"
#include "wire/legacy.h"
#include "wire/op_msg.h"

namespace mongogate::proxy {

using namespace asio::experimental::awaitable_operators;

namespace {

std::string_view opcodeName(std::int32_t op) {
  switch (static_cast<wire::OpCode>(op)) {
    case wire::OpCode::kReply: return "OP_REPLY";
    case wire::OpCode::kUpdate: return "OP_UPDATE";
    case wire::OpCode::kInsert: return "OP_INSERT";
    case wire::OpCode::kReserved: return "OP_RESERVED";
    case wire::OpCode::kQuery: return "OP_QUERY";
    case wire::OpCode::kGetMore: return "OP_GET_MORE";
    case wire::OpCode::kDelete: return "OP_DELETE";
    case wire::OpCode::kKillCursors: return "OP_KILL_CURSORS";
    case wire::OpCode::kCompressed: return "OP_COMPRESSED";
    case wire::OpCode::kMsg: return "OP_MSG";
  }
  return "unknown";
}

// An OP_MSG reply with moreToCome set: the upstream will send more replies (exhaust).
bool replyHasMoreToCome(wire::Bytes reply) {
  if (reply.size() < wire::kHeaderSize + 4) return false;
  if (wire::loadInt32LE(reply.data() + 12) != static_cast<std::int32_t>(wire::OpCode::kMsg)) return false;
  return wire::loadUInt32LE(reply.data() + 16) & wire::msgflags::kMoreToCome;
}

// The command document of an OP_QUERY: drivers talking to a mongos may wrap it as
// {$query: {...}, $readPreference: ...}.
wire::Bytes unwrapQuery(wire::Bytes query) {
  bson_iter_t it;
  if (bson_iter_init_from_data(&it, query.data(), query.size()) && bson_iter_next(&it) &&
      std::string_view(bson_iter_key(&it)) == "$query" && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    std::uint32_t length = 0;
    const std::uint8_t* data = nullptr;
    bson_iter_document(&it, &length, &data);
    return {data, length};
  }
  return query;
}

// The string value of a document's first element ("insert": "stores" → "stores").
std::string_view firstStringValue(wire::Bytes document) {
  bson_iter_t it;
  if (!bson_iter_init_from_data(&it, document.data(), document.size()) || !bson_iter_next(&it) ||
      !BSON_ITER_HOLDS_UTF8(&it)) {
    return {};
  }
  std::uint32_t length = 0;
  const char* value = bson_iter_utf8(&it, &length);
  return {value, length};
}

std::string_view databaseOf(wire::Bytes body) {
  wire::BsonElement db;
  if (!wire::findElement(body, "$db", db)) return {};
  return db.utf8().value_or(std::string_view());
}

// ok: 1 and no writeErrors: every document of an insert was written.
bool insertFullyAcknowledged(wire::Bytes replyBody) {
  bson_iter_t it;
  if (!bson_iter_init_from_data(&it, replyBody.data(), replyBody.size())) return false;
  bool ok = false;
  while (bson_iter_next(&it)) {
    const std::string_view key = bson_iter_key(&it);
    if (key == "ok") ok = bson_iter_as_bool(&it);
    if (key == "writeErrors" || key == "writeConcernError") return false;
  }
  return ok;
}

// SPEC §4: a command whose namespace fields mongogate does not know is forwarded by its
// $db alone, and logged once per process.
void noteUnknownCommand(std::string_view name) {
  thread_local std::set<std::string, std::less<>> seenHere;
  if (seenHere.contains(name)) return;
  seenHere.emplace(name);
  static std::mutex mutex;
  static std::set<std::string, std::less<>> seen;
  std::lock_guard lock(mutex);
  if (seen.emplace(name).second) {
    spdlog::info("command '{}' has no known namespace fields: routed by its $db alone", name);
  }
}

class ClientSession {
 public:
  ClientSession(tcp::socket socket, Worker& worker)
      : stream_(std::move(socket)),
        worker_(worker),
        shared_(worker.shared()),
        reader_(worker.buffers(), worker.shared().config.maxMessageSize),
        connectionId_(worker.shared().nextConnectionId.fetch_add(1)),
        runtime_(worker.runtime().current()) {
    error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    peer_ = ec ? std::string("unknown") : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }

  awaitable<void> run() {
    if (shared_.clientTls && !co_await startTls()) {
      stream_.close();
      co_return;
    }
    shared_.clientConnections.fetch_add(1);
    spdlog::debug("client {} (conn{}): connected", peer_, connectionId_);
    for (;;) {
      if (reader_.releaseIfIdle() && stream_.canWaitWithoutBuffer()) {
        // Nothing buffered: wait for bytes without holding a buffer.
        auto [ec] = co_await stream_.socket().async_wait(tcp::socket::wait_read, nothrow);
        if (ec) break;
      }
      SessionStatus status = SessionStatus::kOk;
      // After the readiness wait the bytes are there: read them now, without another
      // trip through the scheduler (poll); await only when reading would wait.
      std::optional<ReadStatus> read = reader_.poll(stream_);
      if (!read) read = co_await reader_.next(stream_);
      switch (*read) {
        case ReadStatus::kOk: {
          const auto started = std::chrono::steady_clock::now();
          labels_ = {};
          // A request runs on the configuration it started with (reloads swap it).
          if (const auto& current = worker_.runtime().current(); current != runtime_) runtime_ = current;
          status = co_await handleFrame();
          const auto took = recordRequest(worker_, labels_, status, started, reader_.header().messageLength);
          logIfSlow(runtime_->config.log, took, labels_, status, peer_);
          break;
        }
        case ReadStatus::kClosed:
          status = SessionStatus::kClientClosed;
          break;
        case ReadStatus::kIoError:
          status = SessionStatus::kClientIoError;
          break;
        case ReadStatus::kBadHeader:
          spdlog::warn("client {} (conn{}): closing the connection: bad message header ({}: length {}, opcode {})",
                       peer_, connectionId_, wire::describe(reader_.probe().status),
                       reader_.header().messageLength, reader_.header().opCode);
          status = SessionStatus::kBadFrame;
          break;
        case ReadStatus::kTooLarge:
          spdlog::warn("client {} (conn{}): closing the connection: message of {} bytes exceeds the maximum message size of {} bytes",
                       peer_, connectionId_, reader_.header().messageLength, shared_.config.maxMessageSize);
          status = SessionStatus::kFrameTooLarge;
          break;
      }
      if (status == SessionStatus::kOk) continue;
      const StatusOutcome outcome = outcomeOf(status);
      if (outcome.replyError && !co_await sendError(outcome)) break;
      if (outcome.closeClient) break;
    }
    stream_.close();
    if (startedTransaction_) shared_.openTransactions.connectionClosed(connectionId_);
    shared_.clientConnections.fetch_sub(1);
    spdlog::debug("client {} (conn{}): disconnected", peer_, connectionId_);
  }

 private:
  // TLS towards clients: the handshake runs here, on the worker, with a deadline; a
  // failed or stalled handshake closes this connection only.
  awaitable<bool> startTls() {
    stream_.enableTlsServer(*shared_.clientTls);
    asio::steady_timer deadline(stream_.get_executor());
    deadline.expires_after(std::chrono::milliseconds(shared_.config.listenTls.handshakeTimeoutMs));
    bool expired = false;
    deadline.async_wait([this, &expired](const error_code& ec) {
      if (ec) return;  // cancelled: the handshake finished first
      expired = true;
      error_code ignored;
      stream_.socket().cancel(ignored);
    });
    const error_code ec = co_await stream_.handshake(ssl::stream_base::server);
    deadline.cancel();
    if (ec || expired) {
      spdlog::info("client {} (conn{}): TLS handshake failed: {}", peer_, connectionId_,
                   expired ? std::string("timed out") : ec.message());
      co_return false;
    }
    co_return true;
  }

  awaitable<SessionStatus> handleFrame() {
    wire::Bytes frame = reader_.frame();
    wire::MsgHeader header = reader_.header();
    requestId_ = header.requestId;
    requestBody_ = {};
    legacyRequest_ = false;
    replyCompressor_.reset();
    if (header.opCode == static_cast<std::int32_t>(wire::OpCode::kCompressed)) {
      auto compressed = wire::parseOpCompressed(frame, shared_.config.maxMessageSize);
      wire::WireError error = compressed.error;
      if (error.ok()) error = wire::decompressFrame(compressed.value, decompressed_);
      if (!error.ok()) co_return badFrame("OP_COMPRESSED", error);
      frame = decompressed_;
      header = wire::readHeader(frame.data());
      replyCompressor_ = compressed.value.compressor;
      if (!sawCompressed_) {
        sawCompressed_ = true;
        spdlog::debug("client {} (conn{}): compressed requests ({})", peer_, connectionId_,
                      wire::compressorName(compressed.value.compressor));
      }
    }
    switch (static_cast<wire::OpCode>(header.opCode)) {
      case wire::OpCode::kMsg:
        co_return co_await handleOpMsg(frame);
      case wire::OpCode::kQuery:
        legacyRequest_ = true;
        co_return co_await handleOpQuery(frame);
      default:
        legacyRequest_ = true;
        errorMessage_ = "mongogate: opcode " + std::to_string(header.opCode) + " (" +
                        std::string(opcodeName(header.opCode)) +
                        ") is not supported: MongoDB 6.0 removed the legacy opcodes, use OP_MSG";
        spdlog::warn("client {} (conn{}): {}; closing the connection", peer_, connectionId_, errorMessage_);
        co_return SessionStatus::kLegacyOpcode;
    }
  }

  SessionStatus badFrame(std::string_view what, wire::WireError error) {
    spdlog::warn("client {} (conn{}): closing the connection: invalid {} ({} at offset {})", peer_,
                 connectionId_, what, wire::describe(error.status), error.offset);
    return SessionStatus::kBadFrame;
  }

  // The parsed request lives in the session (request_), not in this coroutine's frame,
  // and the handshake has its own coroutine: Asio recycles coroutine frames up to about
  // 1 KB per thread, so a small frame here is one malloc/free fewer per request.
  awaitable<SessionStatus> handleOpMsg(wire::Bytes frame) {
    request_ = wire::parseOpMsg(frame);
    if (!request_.ok()) co_return badFrame("OP_MSG", request_.error);
    const wire::OpMsgView& message = request_.value;
    const std::string_view name = wire::firstKey(message.body);
    if (replyCompressor_ && compressionForbidden(name)) replyCompressor_.reset();
    requestBody_ = message.body;
    labels_ = requestLabels(runtime_->config.routing, name, databaseOf(message.body));
    switch (router::classifyCommand(name)) {
      case router::CommandDisposition::kHandshake:
        co_return co_await answerHandshake(message);
      case router::CommandDisposition::kPing:
        body_.clear();
        appendOkReply(body_);
        co_return co_await replyLocally(message, body_);
      case router::CommandDisposition::kAuth: {
        body_.clear();
        const SessionStatus status = co_await auth_.handle(name, message.body, body_, errorMessage_);
        if (status != SessionStatus::kOk) co_return status;
        co_return co_await replyLocally(message, body_);
      }
      case router::CommandDisposition::kForward:
        if (auto refusal = auth_.refuseBeforeAuthentication(name)) co_return refuse(name, std::move(*refusal));
        co_return co_await routeAndForward(frame, message);
    }
    co_return SessionStatus::kOk;
  }

  awaitable<SessionStatus> answerHandshake(const wire::OpMsgView& message) {
    ClientHello hello;
    if (!readClientHello(message.body, hello)) co_return badFrame("OP_MSG", {wire::WireStatus::kBadBson, message.bodyOffset});
    const UpstreamLimits limits = co_await currentLimits();
    HelloAuthFields authFields;
    co_await auth_.answerHello(message.body, authFields);
    body_.clear();
    appendHelloReply(body_, hello, limits, connectionId_, &authFields, helloExtras());
    co_return co_await replyLocally(message, body_);
  }

  // A refusal decided here (authentication, store scopes): nothing is forwarded.
  SessionStatus refuse(std::string_view name, router::Refusal refusal) {
    spdlog::info("client {} (conn{}): refused {}: {}", peer_, connectionId_, name, refusal.message);
    route_.refusal = std::move(refusal);
    return SessionStatus::kRefused;
  }

  awaitable<SessionStatus> replyLocally(const wire::OpMsgView& request, wire::Bytes body) {
    if (request.moreToCome()) co_return SessionStatus::kOk;  // the client expects no reply
    scratch_.clear();
    wire::appendOpMsg(scratch_, nextReplyId_++, requestId_, 0, body);
    co_return co_await writeReply(scratch_) ? SessionStatus::kOk : SessionStatus::kClientIoError;
  }

  awaitable<SessionStatus> handleOpQuery(wire::Bytes frame) {
    auto parsed = wire::parseOpQuery(frame);
    if (!parsed.ok()) co_return badFrame("OP_QUERY", parsed.error);
    const wire::OpQueryView& query = parsed.value;
    const wire::Bytes command = unwrapQuery(query.query);
    const std::string_view name = wire::firstKey(command);
    labels_.command = admin::commandIndex(name);
    if (replyCompressor_ && compressionForbidden(name)) replyCompressor_.reset();
    if (query.isCommand() && router::isHelloCommand(name)) {
      ClientHello hello;
      if (!readClientHello(command, hello)) co_return badFrame("OP_QUERY", {wire::WireStatus::kBadBson, 0});
      const UpstreamLimits limits = co_await currentLimits();
      HelloAuthFields authFields;
      co_await auth_.answerHello(command, authFields);
      body_.clear();
      appendHelloReply(body_, hello, limits, connectionId_, &authFields, helloExtras());
      scratch_.clear();
      const wire::Bytes documents[] = {body_};
      wire::appendOpReply(scratch_, nextReplyId_++, requestId_, 0, 0, 0, documents);
      co_return co_await writeReply(scratch_) ? SessionStatus::kOk : SessionStatus::kClientIoError;
    }
    errorMessage_ = "Unsupported OP_QUERY command: " + std::string(name.empty() ? "(none)" : name) +
                    ". The client driver may require an upgrade.";
    spdlog::info("client {} (conn{}): {}", peer_, connectionId_, errorMessage_);
    co_return SessionStatus::kUnsupportedOpQuery;
  }

  HelloExtras helloExtras() const { return {shared_.compressors, &shared_.serviceId}; }

  // The limits to advertise: the upstream's own, learned on the first upstream
  // handshake. If none has happened yet, open a pooled connection to learn them.
  awaitable<UpstreamLimits> currentLimits() {
    if (!shared_.limits.front()->get().learned) {
      Acquired acquired = co_await worker_.acquire(0, {});
      if (acquired.result.status == AcquireStatus::kOk) {
        acquired.pool->release(std::move(acquired.result.connection));
      } else {
        spdlog::warn("client {} (conn{}): answering hello with default limits: the upstream has not answered yet",
                     peer_, connectionId_);
      }
    }
    co_return shared_.advertisedLimits();
  }

  // Routes a command (SPEC §3, §4) and forwards it, or refuses it, or fans it out.
  awaitable<SessionStatus> routeAndForward(wire::Bytes frame, const wire::OpMsgView& message) {
    if (!shared_.registry.loaded()) {
      errorMessage_ = "mongogate: the store registry is not loaded yet; retry shortly";
      co_return SessionStatus::kUpstreamUnavailable;
    }
    // Pointers in the route refer into this snapshot: keep it alive for the request.
    const std::shared_ptr<const router::RegistrySnapshot> snapshot = worker_.registry().pin();
    const auto& routing = runtime_->config.routing;
    const std::string_view name = wire::firstKey(message.body);
    if (name == "dropDatabase") {
      const std::string_view database = databaseOf(message.body);
      const std::string_view prefix = database.substr(std::min(database.size(), routing.storeDatabasePrefix.size()));
      if (database.starts_with(routing.storeDatabasePrefix) && snapshot->findByPrefix(prefix)) {
        if (auto refusal = auth_.checkStoreDrop(database, prefix)) co_return refuse(name, std::move(*refusal));
        co_return co_await dropStoreDatabase(*snapshot, database);
      }
    }
    if (name == "insert" && firstStringValue(message.body) == routing.registryCollection &&
        databaseOf(message.body) == routing.mainDatabase) {
      std::lock_guard lock(shared_.assignmentMutex);
      router::routeCommand(routing, *snapshot, shared_.assignment, message, route_);
    } else {
      router::routeCommand(routing, *snapshot, unusedAssignment_, message, route_);
    }
    labels_.route = &route_;
    if (!router::knowsCommandNamespaces(name)) noteUnknownCommand(name);
    if (route_.refusal) {
      spdlog::info("client {} (conn{}): refused {}: {}", peer_, connectionId_, name, route_.refusal->message);
      co_return SessionStatus::kRefused;
    }
    if (auto refusal = auth_.checkRoute(routing, route_, message.body)) co_return refuse(name, std::move(*refusal));
    labels_.upstream = upstreamLabelOf(shared_, route_);
    if (route_.replyHandling != router::ReplyHandling::kForward) co_return co_await fanOut(*snapshot);
    std::optional<std::size_t> deployment = shared_.deploymentOf(route_.upstream);
    if (!deployment) {
      errorMessage_ = "mongogate: no upstream named '" + route_.upstream + "' is configured";
      co_return SessionStatus::kUpstreamUnavailable;
    }
    replyTimesFor_.reset();
    if (shared_.sessions) {
      const SessionStatus status = co_await applySessionRules(message, *deployment);
      if (status != SessionStatus::kOk || sessionReplied_) co_return status;
    }
    // The frame as the client sent it, or spliced around a new body (the document
    // sequences, e.g. an insert's documents, are sent from the client's frame, not copied).
    wire::GatherList request;
    if (!route_.rewrittenSequences.empty()) {
      buildRewrittenRequest(message);
      request.push(rewritten_);
    } else if (route_.bodyRewritten) {
      request = wire::spliceOpMsgBody(message, route_.body, message.header.requestId, 0, requestHead_);
    } else {
      request.push(frame);
    }
    const bool rewriteReplies = !route_.mappings.empty() || !route_.newStores.empty();
    const bool endsTransaction = name == "commitTransaction" || name == "abortTransaction";
    if (endsTransaction || startsTransaction(message.body)) {
      co_return co_await forwardTransactionStatement(endsTransaction, *deployment, name, message, request,
                                                     rewriteReplies ? &route_ : nullptr);
    }
    co_return co_await forward(*deployment, route_.upstream, name, message.body, request, message.moreToCome(),
                               rewriteReplies ? &route_ : nullptr);
  }

  // A statement that opens or ends a multi-document transaction: counted in
  // shared_.openTransactions (proxy/sessions.h) so that a drain waits for it. Open from
  // the first statement's forwarding; ended once commit or abort got a reply.
  awaitable<SessionStatus> forwardTransactionStatement(bool ends, std::size_t deployment, std::string_view name,
                                                       const wire::OpMsgView& message, const wire::GatherList& request,
                                                       const router::RoutedCommand* route) {
    SessionFacts facts;
    const bool tracked = readSessionFacts(message.body, facts) && facts.key && facts.txnNumber;
    if (tracked && !ends) {
      shared_.openTransactions.started(*facts.key, *facts.txnNumber, connectionId_);
      startedTransaction_ = true;
    }
    const SessionStatus status =
        co_await forward(deployment, route_.upstream, name, message.body, request, message.moreToCome(), route);
    // kClientIoError: the reply came, only writing it to the client failed. A first
    // statement that reached no upstream opened nothing there.
    const bool replied = status == SessionStatus::kOk || status == SessionStatus::kClientIoError;
    const bool unsent = status == SessionStatus::kPoolTimeout || status == SessionStatus::kUpstreamUnavailable;
    if (tracked && (ends ? replied : unsent)) shared_.openTransactions.ended(*facts.key, *facts.txnNumber);
    co_return status;
  }

  // Sessions across several deployments (proxy/sessions.h): endSessions split, the
  // transaction pin, causal fields made fit for the target. May change `target` and the
  // route's upstream and body; sets sessionReplied_ when it answered the client itself.
  awaitable<SessionStatus> applySessionRules(const wire::OpMsgView& message, std::size_t& target) {
    sessionReplied_ = false;
    SessionTable& table = *shared_.sessions;
    sessionFacts_ = {};
    if (!readSessionFacts(message.body, sessionFacts_)) co_return SessionStatus::kOk;
    const SessionFacts& facts = sessionFacts_;
    if (route_.commandName == "endSessions") {
      sessionReplied_ = true;
      co_return co_await endSessionsSplit(message);
    }
    std::optional<std::size_t> deployment = shared_.deploymentOf(route_.upstream);
    if (!deployment) co_return SessionStatus::kOk;
    if (facts.key && facts.txnNumber &&
        (route_.commandName == "commitTransaction" || route_.commandName == "abortTransaction")) {
      // They name the admin database: by namespace they would go to main.
      if (auto pinned = table.transactionDeployment(*facts.key, *facts.txnNumber)) {
        deployment = pinned;
        target = *pinned;
        route_.upstream = shared_.deployments[*pinned]->name;
      }
    } else if (facts.key) {
      const SessionTable::Verdict verdict = table.noteCommand(*facts.key, *deployment, facts);
      if (verdict.check == SessionTable::Check::kCrossesDeployments) {
        co_return co_await refuseCrossingTransaction(verdict.pinnedDeployment);
      }
    }
    const wire::Bytes body = route_.bodyRewritten ? wire::Bytes(route_.body) : message.body;
    if (rewriteCausalFields(table, facts, *deployment, body, causalBody_)) {
      route_.body.swap(causalBody_);
      route_.bodyRewritten = true;
    }
    replyTimesFor_ = *deployment;
    co_return SessionStatus::kOk;
  }

  // A transaction statement for a second deployment: abort the transaction where it
  // runs (it must not stay open there), then refuse the statement. Not transient: a
  // retry would cross again.
  awaitable<SessionStatus> refuseCrossingTransaction(std::size_t pinned) {
    const std::string& upstream = shared_.deployments[pinned]->name;
    body_.clear();
    appendAbortTransaction(body_, sessionFacts_.lsid, *sessionFacts_.txnNumber);
    ServerRequest request;
    if (sessionFacts_.key && !shared_.topologies[pinned]->single()) {
      // The server of the transaction's first statement (proxy/affinity.h).
      const wire::Bytes uuid(sessionFacts_.key->data(), sessionFacts_.key->size());
      request.pinnedServer =
          shared_.transactions.get(AffinityTable::transactionKey(pinned, uuid, *sessionFacts_.txnNumber));
    }
    Acquired acquired = co_await worker_.acquire(pinned, request);
    bool aborted = false;
    if (acquired.result.status == AcquireStatus::kOk) {
      std::vector<std::uint8_t> reply;
      aborted = co_await exchangeOnce(*acquired.result.connection, body_, reply);
      if (aborted) {
        acquired.pool->release(std::move(acquired.result.connection));
      } else {
        acquired.pool->discard(std::move(acquired.result.connection));
      }
    }
    spdlog::info("client {} (conn{}): refused {} in a transaction of upstream '{}': it needs another upstream{}",
                 peer_, connectionId_, route_.commandName, upstream,
                 aborted ? "; the transaction was aborted" : "; aborting the transaction failed");
    route_.refusal = router::Refusal{
        263, "OperationNotSupportedInTransaction",
        "mongogate: " + route_.commandName + " on " + route_.logicalDatabase +
            " needs a different upstream cluster than the rest of this transaction; a transaction cannot "
            "span upstream clusters, and this one has been aborted"};
    co_return SessionStatus::kRefused;
  }

  // endSessions: each deployment gets only the sessions it saw; the client gets ok.
  awaitable<SessionStatus> endSessionsSplit(const wire::OpMsgView& message) {
    perDeployment_.resize(shared_.deployments.size());
    if (splitEndSessions(*shared_.sessions, message.body, perDeployment_)) {
      for (std::size_t i = 0; i < perDeployment_.size(); ++i) {
        if (perDeployment_[i].empty()) continue;
        Acquired acquired = co_await worker_.acquire(i, {});
        if (acquired.result.status != AcquireStatus::kOk) continue;  // the server times sessions out anyway
        std::vector<std::uint8_t> reply;
        if (co_await exchangeOnce(*acquired.result.connection, perDeployment_[i], reply)) {
          acquired.pool->release(std::move(acquired.result.connection));
        } else {
          acquired.pool->discard(std::move(acquired.result.connection));
        }
      }
    }
    body_.clear();
    appendOkReply(body_);
    co_return co_await replyLocally(message, body_);
  }

  // The client's OP_MSG with the router's body and sequences; unchanged sequences are
  // copied from the client's frame as they were.
  void buildRewrittenRequest(const wire::OpMsgView& message) {
    const wire::Bytes body = route_.bodyRewritten ? wire::Bytes(route_.body) : message.body;
    std::array<wire::SequenceOut, wire::OpMsgView::kMaxSequences * 2> sequences{};
    std::size_t count = 0;
    for (const wire::DocumentSequence& sequence : message.documentSequences()) {
      wire::SequenceOut out{sequence.identifier, sequence.documents};
      for (const auto& [identifier, documents] : route_.rewrittenSequences) {
        if (identifier == sequence.identifier) out.documents = documents;
      }
      sequences[count++] = out;
    }
    for (const auto& [identifier, documents] : route_.rewrittenSequences) {
      bool present = false;
      for (const wire::DocumentSequence& sequence : message.documentSequences()) {
        present = present || sequence.identifier == identifier;
      }
      if (!present && count < sequences.size()) sequences[count++] = {identifier, documents};
    }
    rewritten_.clear();
    wire::appendOpMsgWithSequences(rewritten_, message.header.requestId, 0, message.flags, body,
                                   {sequences.data(), count});
  }

  // dropDatabase on a rule-3 database drops that store's collections only (SPEC §3):
  // list the physical database's collections, keep those whose longest registered
  // prefix is this store, drop each. The other stores sharing the database are untouched.
  awaitable<SessionStatus> dropStoreDatabase(const router::RegistrySnapshot& snapshot, std::string_view database) {
    const auto& routing = runtime_->config.routing;
    const router::NamespaceResolution where = router::resolveNamespace(routing, snapshot, database, {});
    const router::StoreRecord* store = where.target ? where.target->store : nullptr;
    if (!where.target || !store) {
      route_.refusal = where.refusal;
      co_return SessionStatus::kRefused;
    }
    const std::string upstream = where.target->upstream;
    const std::string physical = where.target->database;
    const std::optional<std::size_t> deployment = shared_.deploymentOf(upstream);
    if (!deployment) {
      errorMessage_ = "mongogate: no upstream named '" + upstream + "' is configured";
      co_return SessionStatus::kUpstreamUnavailable;
    }
    Acquired acquired = co_await worker_.acquire(*deployment, {});
    if (acquired.result.status != AcquireStatus::kOk) co_return acquireFailure(acquired.result, upstream);
    UpstreamPool* pool = acquired.pool;
    std::unique_ptr<UpstreamConnection> connection = std::move(acquired.result.connection);

    bson_t list = BSON_INITIALIZER;
    BSON_APPEND_INT32(&list, "listCollections", 1);
    BSON_APPEND_BOOL(&list, "nameOnly", true);
    BSON_APPEND_UTF8(&list, "$db", physical.c_str());
    body_.assign(bson_get_data(&list), bson_get_data(&list) + list.len);
    bson_destroy(&list);
    std::vector<std::uint8_t> listed;
    bool healthy = co_await exchangeOnce(*connection, body_, listed);
    laterBatches_.clear();
    for (std::int64_t id = healthy ? router::cursorIdOf(listed) : 0; healthy && id != 0;) {
      getMoreBody_.clear();
      router::appendGetMore(getMoreBody_, id, "$cmd.listCollections", physical);
      laterBatches_.emplace_back();
      healthy = co_await exchangeOnce(*connection, getMoreBody_, laterBatches_.back());
      id = healthy ? router::cursorIdOf(laterBatches_.back()) : 0;
    }
    if (healthy && !laterBatches_.empty()) {
      healthy = router::joinCursorBatches(listed, laterBatches_, joined_);
      listed.swap(joined_);
    }
    std::vector<std::string> names;
    bson_iter_t it;
    bson_iter_t batch;
    if (healthy && bson_iter_init_from_data(&it, listed.data(), listed.size()) &&
        bson_iter_find_descendant(&it, "cursor.firstBatch", &batch) && BSON_ITER_HOLDS_ARRAY(&batch)) {
      bson_iter_t entry;
      bson_iter_recurse(&batch, &entry);
      while (bson_iter_next(&entry)) {
        bson_iter_t field;
        if (BSON_ITER_HOLDS_DOCUMENT(&entry) && bson_iter_recurse(&entry, &field) && bson_iter_find(&field, "name") &&
            BSON_ITER_HOLDS_UTF8(&field)) {
          const std::string collection = bson_iter_utf8(&field, nullptr);
          if (snapshot.matchCollection(collection) == store) names.push_back(collection);
        }
      }
    }
    for (std::size_t i = 0; healthy && i < names.size(); ++i) {
      bson_t drop = BSON_INITIALIZER;
      BSON_APPEND_UTF8(&drop, "drop", names[i].c_str());
      BSON_APPEND_UTF8(&drop, "$db", physical.c_str());
      body_.assign(bson_get_data(&drop), bson_get_data(&drop) + drop.len);
      bson_destroy(&drop);
      std::vector<std::uint8_t> dropped;
      healthy = co_await exchangeOnce(*connection, body_, dropped);
    }
    if (!healthy) {
      pool->discard(std::move(connection));
      errorMessage_ = "mongogate: upstream '" + upstream + "' failed while dropping the collections of " +
                      std::string(database);
      co_return SessionStatus::kUpstreamUnavailable;
    }
    pool->release(std::move(connection));
    spdlog::info("client {} (conn{}): dropDatabase {}: dropped {} collections of store '{}'", peer_, connectionId_,
                 database, names.size(), store->prefix);
    bson_t reply = BSON_INITIALIZER;
    bson_append_utf8(&reply, "dropped", -1, database.data(), static_cast<int>(database.size()));
    BSON_APPEND_DOUBLE(&reply, "ok", 1.0);
    body_.assign(bson_get_data(&reply), bson_get_data(&reply) + reply.len);
    bson_destroy(&reply);
    scratch_.clear();
    wire::appendOpMsg(scratch_, nextReplyId_++, requestId_, 0, body_);
    co_return co_await writeReply(scratch_) ? SessionStatus::kOk : SessionStatus::kClientIoError;
  }

  // One command on a borrowed upstream connection; the reply body is copied out.
  awaitable<bool> exchangeOnce(UpstreamConnection& connection, wire::Bytes body, std::vector<std::uint8_t>& reply) {
    scratch_.clear();
    wire::appendOpMsg(scratch_, nextReplyId_++, 0, 0, body);
    auto [writeError, written] = co_await asio::async_write(connection.stream, asio::buffer(scratch_), nothrow);
    (void)written;
    if (writeError || co_await connection.reader.next(connection.stream) != ReadStatus::kOk) co_return false;
    auto parsed = wire::parseOpMsg(connection.reader.frame());
    if (!parsed.ok() || parsed.value.moreToCome()) co_return false;
    reply.assign(parsed.value.body.begin(), parsed.value.body.end());
    co_return true;
  }

  // Cross-store views (SPEC §4): ask every part, read each part's cursor to its end
  // (no upstream cursor is left open), merge, answer once.
  awaitable<SessionStatus> fanOut(const router::RegistrySnapshot& snapshot) {
    constexpr std::size_t kMaxGetMores = 100'000;  // a runaway cursor must not pin the session
    fanOutReplies_.resize(route_.fanOut.size());
    for (std::size_t i = 0; i < route_.fanOut.size(); ++i) {
      const router::SubRequest& part = route_.fanOut[i];
      const std::optional<std::size_t> deployment = shared_.deploymentOf(part.upstream);
      if (!deployment) {
        errorMessage_ = "mongogate: no upstream named '" + part.upstream + "' is configured";
        co_return SessionStatus::kUpstreamUnavailable;
      }
      wire::Bytes partBody = part.body;
      if (shared_.sessions) {
        // A part must not carry another deployment's $clusterTime (proxy/sessions.h).
        SessionFacts facts;
        if (readSessionFacts(part.body, facts) &&
            rewriteCausalFields(*shared_.sessions, facts, *deployment, part.body, causalBody_)) {
          partBody = causalBody_;
        }
      }
      Acquired acquired = co_await worker_.acquire(*deployment, {});
      if (acquired.result.status != AcquireStatus::kOk) co_return acquireFailure(acquired.result, part.upstream);
      UpstreamPool* pool = acquired.pool;
      std::unique_ptr<UpstreamConnection> connection = std::move(acquired.result.connection);
      bool healthy = co_await exchangeOnce(*connection, partBody, fanOutReplies_[i]);
      laterBatches_.clear();
      std::int64_t cursorId = healthy ? router::cursorIdOf(fanOutReplies_[i]) : 0;
      const std::string_view cursorCollection =
          route_.replyHandling == router::ReplyHandling::kMergeListCollections ? "$cmd.listCollections" : "";
      while (healthy && cursorId != 0 && !cursorCollection.empty() && laterBatches_.size() < kMaxGetMores) {
        getMoreBody_.clear();
        router::appendGetMore(getMoreBody_, cursorId, cursorCollection, part.physicalDatabase);
        laterBatches_.emplace_back();
        healthy = co_await exchangeOnce(*connection, getMoreBody_, laterBatches_.back());
        cursorId = healthy ? router::cursorIdOf(laterBatches_.back()) : 0;
      }
      if (!healthy) {
        pool->discard(std::move(connection));
        errorMessage_ = "mongogate: upstream '" + part.upstream + "' failed while answering " + route_.commandName;
        co_return SessionStatus::kUpstreamUnavailable;
      }
      pool->release(std::move(connection));
      if (!laterBatches_.empty()) {
        // A part whose getMore failed answers with that error; otherwise every batch joins.
        if (router::joinCursorBatches(fanOutReplies_[i], laterBatches_, joined_)) {
          fanOutReplies_[i].swap(joined_);
        } else {
          fanOutReplies_[i] = laterBatches_.back();
        }
      }
    }
    std::vector<wire::Bytes> parts(fanOutReplies_.begin(), fanOutReplies_.end());
    body_.clear();
    router::mergeFanOutReplies(runtime_->config.routing, snapshot, route_, parts, body_);
    scratch_.clear();
    wire::appendOpMsg(scratch_, nextReplyId_++, requestId_, 0, body_);
    co_return co_await writeReply(scratch_) ? SessionStatus::kOk : SessionStatus::kClientIoError;
  }

  SessionStatus acquireFailure(const AcquireResult& acquired, const std::string& upstream) {
    if (acquired.status == AcquireStatus::kTimeout) {
      const config::UpstreamConfig* settings = shared_.config.findUpstream(upstream);
      const std::uint32_t waitedMs =
          settings ? settings->pool.waitQueueTimeoutMs : shared_.config.pool.waitQueueTimeoutMs;
      errorMessage_ = "mongogate: timed out after " + std::to_string(waitedMs) +
                      " ms waiting for a connection to upstream '" + upstream + "'";
      return SessionStatus::kPoolTimeout;
    }
    if (acquired.status == AcquireStatus::kNoSuitableServer) {
      errorMessage_ = "mongogate: upstream '" + upstream + "': " + acquired.error;
    } else {
      errorMessage_ = "mongogate: upstream '" + upstream + "' is unreachable: " + acquired.error;
    }
    return SessionStatus::kUpstreamUnavailable;
  }

  // The client's view of an upstream reply frame: pieces of the frame with the physical
  // names replaced, borrowed from the frame, replyHead_, replySplice_ and replyBody_
  // (valid until the next reply). A cursor reply (the common case) is not copied at all.
  wire::GatherList logicalReply(const router::RoutedCommand& route, wire::Bytes reply) {
    if (wire::readHeader(reply.data()).opCode != static_cast<std::int32_t>(wire::OpCode::kMsg)) {
      return wholeFrame(reply);
    }
    auto parsed = wire::parseOpMsg(reply, {.verifyChecksum = false, .validateBson = false});
    if (!parsed.ok()) return wholeFrame(reply);
    const wire::OpMsgView& message = parsed.value;
    if (!route.newStores.empty() && insertFullyAcknowledged(message.body)) {
      // This instance routes the new stores at once; others learn them from the registry.
      for (const router::StoreRecord& store : route.newStores) shared_.registry.upsert(store);
    }
    replyBody_.clear();
    bool changed = false;
    if (!route.mappings.empty()) {
      switch (router::planReplySplice(route, message.body, replySplice_)) {
        case router::ReplySplicePlan::kSpliced:
          // This shape ({cursor, ok, $clusterTime, operationTime}) holds no serverInfo.
          return wire::spliceOpMsgBodyEdits(message, replySplice_.view(), message.header.requestId,
                                            message.header.responseTo, replyHead_);
        case router::ReplySplicePlan::kUnchanged: break;
        case router::ReplySplicePlan::kNotApplicable:
          changed = router::rewriteReply(route, message.body, replyBody_);
          break;
      }
    }
    if (route.commandName == "explain" || route.commandName == "aggregate") {
      // explain output carries serverInfo {host, port}: never shown to the app.
      const wire::Bytes current = changed ? wire::Bytes(replyBody_) : message.body;
      if (router::removeServerInfo(current, stripped_)) {
        replyBody_.swap(stripped_);
        changed = true;
      }
    }
    if (!changed) return wholeFrame(reply);
    return wire::spliceOpMsgBody(message, replyBody_, message.header.requestId, message.header.responseTo,
                                 replyHead_);
  }

  static wire::GatherList wholeFrame(wire::Bytes frame) {
    wire::GatherList list;
    list.push(frame);
    return list;
  }

  // A gather list as Asio buffers, exactly as many as it has parts.
  struct Buffers {
    std::array<asio::const_buffer, wire::GatherList::kMaxParts> items{};
    std::size_t count = 0;
    const asio::const_buffer* begin() const { return items.data(); }
    const asio::const_buffer* end() const { return items.data() + count; }
  };
  static Buffers buffersOf(const wire::GatherList& list) {
    Buffers buffers;
    for (const wire::Bytes& part : list.view()) buffers.items[buffers.count++] = asio::buffer(part.data(), part.size());
    return buffers;
  }

  // Writes what the socket takes right now (plain TCP; usually all of it) and drops it
  // from `pieces`: the caller awaits async_write only for what is left.
  static error_code sendNow(Stream& stream, wire::GatherList& pieces) {
    error_code ec;
    if (const std::optional<std::size_t> n = stream.trySend(buffersOf(pieces), ec)) pieces.consume(*n);
    return ec;
  }

  // What forward() needs to know about the servers of a deployment with several.
  struct ServerContext {
    Topology* topology = nullptr;  // nullptr: a single-server deployment (nothing to track)
    RequestFacts facts;
  };

  // Where a request goes within its deployment: its read preference, or the server that
  // owns its cursor or transaction.
  ServerRequest serverRequestFor(std::size_t deployment, std::string_view name, const ServerContext& context) {
    ServerRequest request;
    const RequestFacts& facts = context.facts;
    request.selection = selectionFor(name, facts, context.topology->defaultReadPreference());
    if (facts.cursorId != 0 && (name == "getMore" || name == "killCursors")) {
      request.pinnedServer = shared_.cursors.get(AffinityTable::cursorKey(deployment, facts.cursorId));
    } else if (facts.autocommitFalse && facts.txnNumber && !facts.lsid.empty() && !facts.startTransaction) {
      request.pinnedServer =
          shared_.transactions.get(AffinityTable::transactionKey(deployment, facts.lsid, *facts.txnNumber));
    }
    if (facts.maxTimeMs > 0) {
      const auto selectionTimeout = std::chrono::milliseconds(shared_.config.topology.serverSelectionTimeoutMs);
      request.deadline = std::chrono::steady_clock::now() +
                         std::min<std::chrono::milliseconds>(selectionTimeout, std::chrono::milliseconds(facts.maxTimeMs));
    }
    return request;
  }

  // A reply from a server of a deployment with several: note who owns a new cursor or
  // transaction, forget exhausted cursors, and react to "not primary"/"recovering".
  void noteReply(std::size_t deployment, std::string_view name, const ServerContext& context, const Acquired& acquired,
                 wire::Bytes reply, bool first) {
    if (wire::readHeader(reply.data()).opCode != static_cast<std::int32_t>(wire::OpCode::kMsg)) return;
    auto parsed = wire::parseOpMsg(reply, {.verifyChecksum = false, .validateBson = false});
    if (!parsed.ok()) return;
    const wire::Bytes body = parsed.value.body;
    const std::size_t server = acquired.result.server;
    if (const std::int32_t code = errorCodeOf(body); code != 0) {
      // A secondary refusing a write sent to it on purpose (read preference) is healthy.
      if (isStateChangeError(code) && (acquired.primary || (code != 10107 && code != 13435))) {
        context.topology->markUnknown(server, "state change error " + std::to_string(code));
      }
      return;
    }
    const RequestFacts& facts = context.facts;
    if (first && facts.startTransaction && facts.txnNumber && !facts.lsid.empty()) {
      shared_.transactions.put(AffinityTable::transactionKey(deployment, facts.lsid, *facts.txnNumber), server);
    }
    if (name == "killCursors") {
      shared_.cursors.erase(AffinityTable::cursorKey(deployment, facts.cursorId));
      return;
    }
    const std::int64_t cursorId = router::cursorIdOf(body);
    if (name == "getMore") {
      if (cursorId == 0) shared_.cursors.erase(AffinityTable::cursorKey(deployment, facts.cursorId));
    } else if (cursorId != 0) {
      shared_.cursors.put(AffinityTable::cursorKey(deployment, cursorId), server);
    }
  }

  // When a forwarded request stops waiting for its reply (README "Errors"): maxTimeMS plus
  // the grace, else the global request timeout, else never (kind kOk).
  struct RequestDeadline {
    SessionStatus kind = SessionStatus::kOk;
    std::chrono::milliseconds budget{0};
    std::chrono::steady_clock::time_point at;
  };

  RequestDeadline deadlineFor(std::int64_t maxTimeMs, std::chrono::steady_clock::time_point started) const {
    const config::TopologyConfig& settings = runtime_->config.topology;
    RequestDeadline deadline;
    if (maxTimeMs > 0) {
      deadline.kind = SessionStatus::kMaxTimeExpired;
      // Servers refuse maxTimeMS above 2^31 - 1; the clamp keeps the sum from overflowing.
      const std::int64_t capped = std::min<std::int64_t>(maxTimeMs, std::numeric_limits<std::int32_t>::max());
      deadline.budget = std::chrono::milliseconds(capped) + std::chrono::milliseconds(settings.requestDeadlineGraceMs);
    } else if (settings.requestTimeoutMs > 0) {
      deadline.kind = SessionStatus::kRequestTimeout;
      deadline.budget = std::chrono::milliseconds(settings.requestTimeoutMs);
    } else {
      return deadline;
    }
    deadline.at = started + deadline.budget;
    return deadline;
  }

  // The upstream's next reply frame, or nullopt at `at` (the read is then cancelled).
  awaitable<std::optional<ReadStatus>> readBefore(UpstreamConnection& connection,
                                                  std::chrono::steady_clock::time_point at) {
    asio::steady_timer timer(stream_.get_executor());
    timer.expires_at(at);
    auto outcome = co_await (connection.reader.next(connection.stream) || timer.async_wait(nothrow));
    if (outcome.index() == 1) co_return std::nullopt;
    co_return std::get<0>(outcome);
  }

  awaitable<SessionStatus> forward(std::size_t deployment, const std::string& upstream, std::string_view name,
                                   wire::Bytes body, const wire::GatherList& request, bool moreToCome,
                                   const router::RoutedCommand* route) {
    struct InFlight {
      explicit InFlight(std::atomic<std::int64_t>& c) : counter(c) { counter.fetch_add(1); }
      ~InFlight() { counter.fetch_sub(1); }
      std::atomic<std::int64_t>& counter;
    } inFlight(shared_.requestsInFlight);

    ServerContext context;
    ServerRequest serverRequest;
    Topology& topology = *shared_.topologies[deployment];
    if (!topology.single()) {  // single-server deployments pay nothing for topology
      context.topology = &topology;
      context.facts = readRequestFacts(name, body);
      serverRequest = serverRequestFor(deployment, name, context);
    }
    const auto waitStarted = std::chrono::steady_clock::now();
    const RequestDeadline deadline =
        deadlineFor(context.topology ? context.facts.maxTimeMs : maxTimeMsOf(body), waitStarted);
    // (No co_await inside ?: : GCC 12 miscompiles it.)
    std::optional<Acquired> ready = worker_.tryAcquireNow(deployment, serverRequest);
    if (!ready) ready = co_await worker_.acquire(deployment, serverRequest);
    Acquired& acquired = *ready;
    recordPoolAcquire(worker_, deployment, acquired.result.status, waitStarted);
    if (acquired.result.status != AcquireStatus::kOk) co_return acquireFailure(acquired.result, upstream);
    UpstreamPool& pool = *acquired.pool;
    std::unique_ptr<UpstreamConnection> connection = std::move(acquired.result.connection);
    wire::GatherList unsent = request;
    error_code writeError = sendNow(connection->stream, unsent);
    if (!writeError && unsent.count > 0) {
      auto [ec, written] = co_await asio::async_write(connection->stream, buffersOf(unsent), nothrow);
      (void)written;
      writeError = ec;
    }
    if (writeError) {
      spdlog::warn("client {} (conn{}): upstream write failed: {}", peer_, connectionId_, writeError.message());
      pool.discard(std::move(connection));
      if (context.topology) context.topology->markUnknown(acquired.result.server, "network error");
      co_return SessionStatus::kUpstreamIoError;
    }
    if (moreToCome) {  // unacknowledged: the upstream sends no reply
      pool.release(std::move(connection));
      co_return SessionStatus::kOk;
    }
    for (bool first = true;; first = false) {
      // The deadline bounds the wait for the first reply only: once reply bytes reached
      // the client (an exhaust stream's later replies), no error reply can follow.
      std::optional<ReadStatus> status;
      if (first && deadline.kind != SessionStatus::kOk) {
        status = co_await readBefore(*connection, deadline.at);
      } else {
        status = co_await connection->reader.next(connection->stream);
      }
      if (!status) {
        // Mid-exchange: the reply may still come, so the connection cannot be reused.
        pool.discard(std::move(connection));
        spdlog::warn("client {} (conn{}): no reply to {} from upstream '{}' within {} ms; answering {}", peer_,
                     connectionId_, name, upstream, deadline.budget.count(), outcomeOf(deadline.kind).codeName);
        errorMessage_ = "mongogate: operation exceeded time limit: no reply from upstream '" + upstream + "' within " +
                        std::to_string(deadline.budget.count()) + " ms";
        co_return deadline.kind;
      }
      if (*status != ReadStatus::kOk) {
        spdlog::warn("client {} (conn{}): the upstream failed before its reply was complete; closing the client connection",
                     peer_, connectionId_);
        pool.discard(std::move(connection));
        if (context.topology) context.topology->markUnknown(acquired.result.server, "network error");
        co_return SessionStatus::kUpstreamIoError;
      }
      const wire::Bytes physicalReply = connection->reader.frame();
      if (replyTimesFor_) noteSessionReply(physicalReply);
      if (context.topology) noteReply(deployment, name, context, acquired, physicalReply, first);
      const bool streaming = replyHasMoreToCome(physicalReply);
      labels_.commandError = !streaming && replyIsCommandError(physicalReply);
      if (!co_await writeReply(route ? logicalReply(*route, physicalReply) : wholeFrame(physicalReply))) {
        // Mid-stream, the upstream connection still owes replies: it cannot be reused.
        if (streaming) {
          pool.discard(std::move(connection));
        } else {
          pool.release(std::move(connection));
        }
        co_return SessionStatus::kClientIoError;
      }
      if (!streaming) break;
    }
    pool.release(std::move(connection));
    co_return SessionStatus::kOk;
  }

  void noteSessionReply(wire::Bytes reply) {
    if (wire::readHeader(reply.data()).opCode != static_cast<std::int32_t>(wire::OpCode::kMsg)) return;
    auto parsed = wire::parseOpMsg(reply, {.verifyChecksum = false, .validateBson = false});
    if (parsed.ok()) noteReplyTimes(*shared_.sessions, sessionFacts_, *replyTimesFor_, parsed.value.body);
  }

  // Writes a reply frame given as pieces (one gather write), compressed with the
  // request's compressor when it had one.
  awaitable<bool> writeReply(wire::GatherList pieces) {
    if (replyCompressor_) {
      wire::Bytes frame = pieces.parts[0];
      if (pieces.count > 1) {
        replyOut_.clear();
        wire::flatten(pieces, replyOut_);
        frame = replyOut_;
      }
      if (!wire::compressFrame(frame, *replyCompressor_, compressed_).ok()) co_return false;
      pieces = wholeFrame(compressed_);
    }
    const std::size_t size = pieces.totalSize();
    error_code ec = sendNow(stream_, pieces);
    if (!ec && pieces.count > 0) {
      auto [error, written] = co_await asio::async_write(stream_, buffersOf(pieces), nothrow);
      (void)written;
      ec = error;
    }
    if (!ec) worker_.metrics().addBytesOut(size);
    co_return !ec;
  }
  awaitable<bool> writeReply(wire::Bytes frame) { return writeReply(wholeFrame(frame)); }

  awaitable<bool> sendError(const StatusOutcome& outcome) {
    static constexpr std::string_view kRetryableWrite[] = {"RetryableWriteError"};
    static constexpr std::string_view kTransient[] = {"TransientTransactionError"};
    wire::CommandError error{outcome.code, outcome.codeName, errorMessage_, {}};
    if (route_.refusal && outcome.code == 0) {
      error = {route_.refusal->code, route_.refusal->codeName, route_.refusal->message, {}};
    }
    if (outcome.retryableLabel) {
      switch (retryLabelFor(wire::firstKey(requestBody_), requestBody_)) {
        case RetryLabel::kRetryableWrite: error.labels = kRetryableWrite; break;
        case RetryLabel::kTransientTransaction: error.labels = kTransient; break;
        case RetryLabel::kNone: break;
      }
    }
    scratch_.clear();
    if (legacyRequest_) {
      wire::appendOpReplyError(scratch_, nextReplyId_++, requestId_, error);
    } else {
      wire::appendOpMsgError(scratch_, nextReplyId_++, requestId_, error);
    }
    co_return co_await writeReply(scratch_);
  }

  Stream stream_;
  Worker& worker_;
  SharedState& shared_;
  FrameReader reader_;
  std::int64_t connectionId_;
  std::shared_ptr<const RuntimeConfig> runtime_;  // the current request's configuration
  std::string peer_;
  ClientAuth auth_{worker_, peer_, connectionId_};  // SPEC §6: who the client is, what it may touch
  std::int32_t requestId_ = 0;
  wire::Bytes requestBody_;  // the current OP_MSG request's body (for error labels)
  wire::Parsed<wire::OpMsgView> request_;  // the current OP_MSG request, parsed
  std::int32_t nextReplyId_ = 1;
  bool legacyRequest_ = false;
  std::optional<wire::Compressor> replyCompressor_;
  std::string errorMessage_;
  std::vector<std::uint8_t> body_;
  std::vector<std::uint8_t> scratch_;
  std::vector<std::uint8_t> decompressed_;
  std::vector<std::uint8_t> compressed_;
  router::RoutedCommand route_;             // the current request's route (reused)
  router::AssignmentState unusedAssignment_;  // for commands that assign no store
  std::vector<std::uint8_t> rewritten_;     // a rewritten request frame
  std::vector<std::uint8_t> replyBody_;     // a rewritten reply body
  std::vector<std::uint8_t> replyOut_;      // a rewritten reply frame, when it is compressed
  std::array<std::uint8_t, 20> replyHead_{};  // a spliced reply's header and flags
  std::array<std::uint8_t, 20> requestHead_{};  // a spliced request's header and flags
  router::ReplySplice replySplice_;         // a cursor reply's edits
  std::vector<std::vector<std::uint8_t>> fanOutReplies_;
  std::vector<std::vector<std::uint8_t>> laterBatches_;  // a fan-out part's getMore replies
  std::vector<std::uint8_t> getMoreBody_;
  std::vector<std::uint8_t> joined_;
  std::vector<std::uint8_t> stripped_;      // a reply body without serverInfo
  RequestLabels labels_;  // the current request's metric labels
  bool sawCompressed_ = false;
  bool startedTransaction_ = false;  // shared_.openTransactions may hold one of this connection's
  // Sessions across deployments (proxy/sessions.h); unused with one deployment.
  SessionFacts sessionFacts_;                  // the current request's (borrows its frame)
  std::optional<std::size_t> replyTimesFor_;   // learn $clusterTime/operationTime from this deployment
  bool sessionReplied_ = false;
  std::vector<std::uint8_t> causalBody_;
  std::vector<std::vector<std::uint8_t>> perDeployment_;
};

}  // namespace

awaitable<void> runClientSession(tcp::socket socket, Worker& worker) {
  ClientSession session(std::move(socket), worker);
  co_await session.run();
}

}  // namespace mongogate::proxy
