#include "proxy/client_session.h"

#include <bson/bson.h>
#include <spdlog/spdlog.h>

#include <optional>
#include <string>

#include "proxy/session_status.h"
#include "router/command_table.h"
#include "wire/builder.h"
#include "wire/compression.h"
#include "wire/legacy.h"
#include "wire/op_msg.h"

namespace mongogate::proxy {
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

class ClientSession {
 public:
  ClientSession(tcp::socket socket, Worker& worker)
      : socket_(std::move(socket)),
        worker_(worker),
        shared_(worker.shared()),
        reader_(worker.buffers(), worker.shared().config.maxMessageSize),
        connectionId_(worker.shared().nextConnectionId.fetch_add(1)) {
    error_code ec;
    auto endpoint = socket_.remote_endpoint(ec);
    peer_ = ec ? std::string("unknown") : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }

  awaitable<void> run() {
    shared_.clientConnections.fetch_add(1);
    spdlog::debug("client {} (conn{}): connected", peer_, connectionId_);
    for (;;) {
      if (reader_.releaseIfIdle()) {
        // Nothing buffered: wait for bytes without holding a buffer.
        auto [ec] = co_await socket_.async_wait(tcp::socket::wait_read, nothrow);
        if (ec) break;
      }
      SessionStatus status = SessionStatus::kOk;
      switch (co_await reader_.next(socket_)) {
        case ReadStatus::kOk:
          status = co_await handleFrame();
          break;
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
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    shared_.clientConnections.fetch_sub(1);
    spdlog::debug("client {} (conn{}): disconnected", peer_, connectionId_);
  }

 private:
  awaitable<SessionStatus> handleFrame() {
    wire::Bytes frame = reader_.frame();
    wire::MsgHeader header = reader_.header();
    requestId_ = header.requestId;
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

  awaitable<SessionStatus> handleOpMsg(wire::Bytes frame) {
    auto parsed = wire::parseOpMsg(frame);
    if (!parsed.ok()) co_return badFrame("OP_MSG", parsed.error);
    const wire::OpMsgView& message = parsed.value;
    const std::string_view name = wire::firstKey(message.body);
    switch (router::classifyCommand(name)) {
      case router::CommandDisposition::kHandshake: {
        ClientHello hello;
        if (!readClientHello(message.body, hello)) co_return badFrame("OP_MSG", {wire::WireStatus::kBadBson, message.bodyOffset});
        const UpstreamLimits limits = co_await currentLimits();
        body_.clear();
        appendHelloReply(body_, hello, limits, connectionId_);
        co_return co_await replyLocally(message, body_);
      }
      case router::CommandDisposition::kPing:
        body_.clear();
        appendOkReply(body_);
        co_return co_await replyLocally(message, body_);
      case router::CommandDisposition::kAuth:
        errorMessage_ = "Authentication failed.";
        spdlog::info("client {} (conn{}): refused {}: client authentication is not enabled", peer_, connectionId_, name);
        co_return SessionStatus::kAuthNotEnabled;
      case router::CommandDisposition::kForward:
        co_return co_await forward(frame, message.moreToCome());
    }
    co_return SessionStatus::kOk;
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
    if (query.isCommand() && router::isHelloCommand(name)) {
      ClientHello hello;
      if (!readClientHello(command, hello)) co_return badFrame("OP_QUERY", {wire::WireStatus::kBadBson, 0});
      const UpstreamLimits limits = co_await currentLimits();
      body_.clear();
      appendHelloReply(body_, hello, limits, connectionId_);
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

  // The limits to advertise: the upstream's own, learned on the first upstream
  // handshake. If none has happened yet, open a pooled connection to learn them.
  awaitable<UpstreamLimits> currentLimits() {
    UpstreamLimits limits = shared_.limits.get();
    if (limits.learned) co_return limits;
    AcquireResult acquired = co_await worker_.pool().acquire();
    if (acquired.status == AcquireStatus::kOk) {
      worker_.pool().release(std::move(acquired.connection));
    } else {
      spdlog::warn("client {} (conn{}): answering hello with default limits: the upstream has not answered yet",
                   peer_, connectionId_);
    }
    co_return shared_.limits.get();
  }

  awaitable<SessionStatus> forward(wire::Bytes request, bool moreToCome) {
    struct InFlight {
      explicit InFlight(std::atomic<std::int64_t>& c) : counter(c) { counter.fetch_add(1); }
      ~InFlight() { counter.fetch_sub(1); }
      std::atomic<std::int64_t>& counter;
    } inFlight(shared_.requestsInFlight);

    UpstreamPool& pool = worker_.pool();
    AcquireResult acquired = co_await pool.acquire();
    switch (acquired.status) {
      case AcquireStatus::kOk:
        break;
      case AcquireStatus::kTimeout:
        errorMessage_ = "mongogate: timed out after " + std::to_string(shared_.config.pool.waitQueueTimeoutMs) +
                        " ms waiting for a connection to upstream '" + shared_.config.main.name + "'";
        co_return SessionStatus::kPoolTimeout;
      case AcquireStatus::kConnectFailed:
      case AcquireStatus::kShuttingDown:
        errorMessage_ = "mongogate: upstream '" + shared_.config.main.name + "' is unreachable: " + acquired.error;
        co_return SessionStatus::kUpstreamUnavailable;
    }
    std::unique_ptr<UpstreamConnection> connection = std::move(acquired.connection);
    auto [writeError, written] = co_await asio::async_write(connection->socket, asio::buffer(request.data(), request.size()), nothrow);
    (void)written;
    if (writeError) {
      spdlog::warn("client {} (conn{}): upstream write failed: {}", peer_, connectionId_, writeError.message());
      pool.discard(std::move(connection));
      co_return SessionStatus::kUpstreamIoError;
    }
    if (moreToCome) {  // unacknowledged: the upstream sends no reply
      pool.release(std::move(connection));
      co_return SessionStatus::kOk;
    }
    for (;;) {
      const ReadStatus status = co_await connection->reader.next(connection->socket);
      if (status != ReadStatus::kOk) {
        spdlog::warn("client {} (conn{}): the upstream failed before its reply was complete; closing the client connection",
                     peer_, connectionId_);
        pool.discard(std::move(connection));
        co_return SessionStatus::kUpstreamIoError;
      }
      const wire::Bytes reply = connection->reader.frame();
      const bool streaming = replyHasMoreToCome(reply);
      if (!co_await writeReply(reply)) {
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

  // Writes a reply frame, compressed with the request's compressor when it had one.
  awaitable<bool> writeReply(wire::Bytes frame) {
    if (replyCompressor_) {
      if (!wire::compressFrame(frame, *replyCompressor_, compressed_).ok()) co_return false;
      frame = compressed_;
    }
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(frame.data(), frame.size()), nothrow);
    (void)n;
    co_return !ec;
  }

  awaitable<bool> sendError(const StatusOutcome& outcome) {
    static constexpr std::string_view kRetryable[] = {"RetryableWriteError"};
    wire::CommandError error{outcome.code, outcome.codeName, errorMessage_, {}};
    if (outcome.retryableLabel) error.labels = kRetryable;
    scratch_.clear();
    if (legacyRequest_) {
      wire::appendOpReplyError(scratch_, nextReplyId_++, requestId_, error);
    } else {
      wire::appendOpMsgError(scratch_, nextReplyId_++, requestId_, error);
    }
    co_return co_await writeReply(scratch_);
  }

  tcp::socket socket_;
  Worker& worker_;
  SharedState& shared_;
  FrameReader reader_;
  std::int64_t connectionId_;
  std::string peer_;
  std::int32_t requestId_ = 0;
  std::int32_t nextReplyId_ = 1;
  bool legacyRequest_ = false;
  std::optional<wire::Compressor> replyCompressor_;
  std::string errorMessage_;
  std::vector<std::uint8_t> body_;
  std::vector<std::uint8_t> scratch_;
  std::vector<std::uint8_t> decompressed_;
  std::vector<std::uint8_t> compressed_;
};

}  // namespace

awaitable<void> runClientSession(tcp::socket socket, Worker& worker) {
  ClientSession session(std::move(socket), worker);
  co_await session.run();
}

}  // namespace mongogate::proxy
