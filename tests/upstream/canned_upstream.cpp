// canned_upstream.cpp — a fast MongoDB upstream that answers from pre-built replies.
//
// Promise: speaks just enough of the wire protocol for benchmarks of mongogate — OP_MSG
// (kind-0 body, kind-1 sequences, checksum flag, moreToCome) and OP_QUERY/OP_REPLY for the
// legacy handshake — and answers every request instantly without building BSON on the hot
// path. It never stores data: `find` returns K synthetic ~100-byte documents, where K is the
// request's `limit` (capped at 1000) or 1.
//
//   hello / isMaster / ismaster  -> standalone-mongod handshake (maxWireVersion 21 by default)
//   insert                       -> {n: <documents in the body array or the "documents"
//                                    sequence>, ok: 1}
//   find                         -> {cursor: {firstBatch: [K docs], id: 0, ns: "<$db>.<coll>"}}
//   getMore                      -> {cursor: {nextBatch: [], id: 0, ns}, ok: 1}
//   anything else (ping, endSessions, killCursors, ...) -> {ok: 1}
//
// Pipelined requests on one connection are answered in order, batched into one write.
// Each connection coroutine owns a reusable input and output buffer, so a connection in
// steady state performs no allocation.
//
// Reference: MongoDB Wire Protocol (OP_MSG, OP_QUERY, OP_REPLY),
// https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/
//
// Usage: canned_upstream [--host 127.0.0.1] [--port 0] [--port-file PATH] [--threads 1]
//                        [--max-wire-version 21]
// Prints "canned-upstream listening on HOST:PORT"; SIGINT/SIGTERM exit 0.

#include <bson/bson.h>

#include <boost/asio.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::int32_t kOpReply = 1;
constexpr std::int32_t kOpQuery = 2004;
constexpr std::int32_t kOpMsg = 2013;
constexpr std::uint32_t kChecksumPresent = 1u << 0;
constexpr std::uint32_t kMoreToCome = 1u << 1;
constexpr std::int32_t kMaxMessageSize = 48'000'000;
constexpr std::size_t kHeaderSize = 16;
constexpr int kMaxFindDocs = 1000;
constexpr std::size_t kInitialBuffer = 64 * 1024;

// ---- little-endian helpers ------------------------------------------------------------------

std::int32_t loadI32(const std::uint8_t* p) {
  std::uint32_t v = static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
                    static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
  return static_cast<std::int32_t>(v);
}

void storeI32(std::uint8_t* p, std::int32_t value) {
  auto v = static_cast<std::uint32_t>(value);
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
  p[2] = static_cast<std::uint8_t>(v >> 16);
  p[3] = static_cast<std::uint8_t>(v >> 24);
}

// Appends to a byte vector whose capacity is reused from request to request.
class ByteWriter {
 public:
  explicit ByteWriter(std::vector<std::uint8_t>& out) : out_(out) {}

  std::size_t size() const { return out_.size(); }
  void bytes(const void* data, std::size_t n) {
    if (n == 0) return;  // data may be null for an empty view
    const std::size_t at = out_.size();
    out_.resize(at + n);
    std::memcpy(out_.data() + at, data, n);
  }
  void u8(std::uint8_t v) { out_.push_back(v); }
  void i32(std::int32_t v) {
    std::uint8_t b[4];
    storeI32(b, v);
    bytes(b, 4);
  }
  void i64(std::int64_t v) {
    std::uint8_t b[8];
    auto u = static_cast<std::uint64_t>(v);
    for (int i = 0; i < 8; ++i) b[i] = static_cast<std::uint8_t>(u >> (8 * i));
    bytes(b, 8);
  }
  void f64(double v) {
    std::uint64_t u;
    std::memcpy(&u, &v, 8);
    i64(static_cast<std::int64_t>(u));
  }
  void cstr(std::string_view s) {
    bytes(s.data(), s.size());
    u8(0);
  }
  void patchI32(std::size_t at, std::int32_t v) { storeI32(out_.data() + at, v); }
  std::uint8_t* at(std::size_t offset) { return out_.data() + offset; }

 private:
  std::vector<std::uint8_t>& out_;
};

// ---- canned documents, built once with libbson -------------------------------------------------

std::vector<std::uint8_t> toBytes(const bson_t* doc) {
  const std::uint8_t* data = bson_get_data(doc);
  return {data, data + doc->len};
}

struct CannedReplies {
  // connectionId is the first field so it can be patched at a fixed offset.
  static constexpr std::size_t kConnectionIdOffset = 4 + 1 + sizeof("connectionId");
  // n is the first field of the insert reply.
  static constexpr std::size_t kInsertNOffset = 4 + 1 + sizeof("n");

  std::vector<std::uint8_t> helloMsg;     // OP_MSG "hello": isWritablePrimary
  std::vector<std::uint8_t> isMasterMsg;  // OP_MSG / OP_QUERY "isMaster": ismaster
  std::vector<std::uint8_t> ok;
  std::vector<std::uint8_t> insertTemplate;
  std::vector<std::uint8_t> emptyArray;
};

std::vector<std::uint8_t> buildHandshake(bool legacyName, int maxWireVersion) {
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_INT32(&doc, "connectionId", 0);
  BSON_APPEND_BOOL(&doc, legacyName ? "ismaster" : "isWritablePrimary", true);
  BSON_APPEND_BOOL(&doc, "helloOk", true);
  BSON_APPEND_INT32(&doc, "maxBsonObjectSize", 16 * 1024 * 1024);
  BSON_APPEND_INT32(&doc, "maxMessageSizeBytes", kMaxMessageSize);
  BSON_APPEND_INT32(&doc, "maxWriteBatchSize", 100000);
  BSON_APPEND_DATE_TIME(&doc, "localTime", static_cast<int64_t>(std::time(nullptr)) * 1000);
  BSON_APPEND_INT32(&doc, "logicalSessionTimeoutMinutes", 30);
  BSON_APPEND_INT32(&doc, "minWireVersion", 0);
  BSON_APPEND_INT32(&doc, "maxWireVersion", maxWireVersion);
  BSON_APPEND_BOOL(&doc, "readOnly", false);
  BSON_APPEND_DOUBLE(&doc, "ok", 1.0);
  auto bytes = toBytes(&doc);
  bson_destroy(&doc);
  return bytes;
}

CannedReplies buildCannedReplies(int maxWireVersion) {
  CannedReplies r;
  r.helloMsg = buildHandshake(false, maxWireVersion);
  r.isMasterMsg = buildHandshake(true, maxWireVersion);
  bson_t doc = BSON_INITIALIZER;
  BSON_APPEND_DOUBLE(&doc, "ok", 1.0);
  r.ok = toBytes(&doc);
  bson_reinit(&doc);
  BSON_APPEND_INT32(&doc, "n", 0);
  BSON_APPEND_DOUBLE(&doc, "ok", 1.0);
  r.insertTemplate = toBytes(&doc);
  bson_reinit(&doc);
  r.emptyArray = toBytes(&doc);
  bson_destroy(&doc);
  return r;
}

// The firstBatch array of K synthetic products, each exactly 100 bytes of BSON.
std::vector<std::uint8_t> buildProductArray(int count) {
  bson_t array = BSON_INITIALIZER;
  for (int i = 0; i < count; ++i) {
    char keyBuf[16];
    const char* key = nullptr;
    const std::size_t keyLen = bson_uint32_to_string(static_cast<uint32_t>(i), &key, keyBuf,
                                                     sizeof keyBuf);
    bson_t product;
    bson_append_document_begin(&array, key, static_cast<int>(keyLen), &product);
    BSON_APPEND_INT32(&product, "_id", i);
    // 51 characters of name make the document exactly 100 bytes.
    char name[52];
    std::memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    char prefix[24];
    const int prefixLen = std::snprintf(prefix, sizeof prefix, "product-%06d-", i);
    std::memcpy(name, prefix, static_cast<std::size_t>(prefixLen));
    BSON_APPEND_UTF8(&product, "name", name);
    BSON_APPEND_DOUBLE(&product, "price", 9.99 + i);
    BSON_APPEND_INT32(&product, "qty", i % 100);
    bson_append_document_end(&array, &product);
  }
  auto bytes = toBytes(&array);
  bson_destroy(&array);
  return bytes;
}

// Arrays for every K, built on first use and kept for the life of the process.
class ProductArrays {
 public:
  ProductArrays() {
    for (int k : {0, 1, 2, 5, 10, 20, 50, 100, 101, 200, 500, 1000}) slot(k);
  }
  ~ProductArrays() {
    for (auto& built : arrays_) delete built.load(std::memory_order_acquire);
  }
  ProductArrays(const ProductArrays&) = delete;
  ProductArrays& operator=(const ProductArrays&) = delete;
  const std::vector<std::uint8_t>& get(int k) {
    const std::vector<std::uint8_t>* built = arrays_[k].load(std::memory_order_acquire);
    return built ? *built : slot(k);
  }

 private:
  const std::vector<std::uint8_t>& slot(int k) {
    std::lock_guard lock(mutex_);
    const std::vector<std::uint8_t>* built = arrays_[k].load(std::memory_order_relaxed);
    if (!built) {
      built = new std::vector<std::uint8_t>(buildProductArray(k));  // freed in the destructor
      arrays_[k].store(built, std::memory_order_release);
    }
    return *built;
  }
  std::mutex mutex_;
  std::array<std::atomic<const std::vector<std::uint8_t>*>, kMaxFindDocs + 1> arrays_{};
};

// ---- request parsing ---------------------------------------------------------------------------

// Borrowed views into the connection's input buffer; valid while one frame is handled.
struct RequestView {
  std::int32_t requestId = 0;
  std::int32_t opCode = 0;
  std::uint32_t flags = 0;
  const std::uint8_t* body = nullptr;
  std::uint32_t bodyLen = 0;
  int documentsInSequence = -1;  // OP_MSG kind-1 "documents" count, -1 when absent
  std::string_view legacyDb;     // OP_QUERY: the database part of fullCollectionName
};

bool parseOpMsg(const std::uint8_t* frame, std::size_t len, RequestView& req) {
  if (len < kHeaderSize + 4 + 1 + 5) return false;
  req.flags = static_cast<std::uint32_t>(loadI32(frame + 16));
  std::size_t end = len;
  if (req.flags & kChecksumPresent) end -= 4;  // trusted: benchmarks do not verify CRC
  std::size_t pos = kHeaderSize + 4;
  while (pos < end) {
    const std::uint8_t kind = frame[pos++];
    if (pos + 4 > end) return false;
    const std::int32_t size = loadI32(frame + pos);
    if (size < 5 || pos + static_cast<std::size_t>(size) > end) return false;
    if (kind == 0) {
      if (req.body) return false;
      req.body = frame + pos;
      req.bodyLen = static_cast<std::uint32_t>(size);
    } else if (kind == 1) {
      const std::size_t sectionEnd = pos + static_cast<std::size_t>(size);
      const auto* idStart = frame + pos + 4;
      const auto* nul = static_cast<const std::uint8_t*>(
          std::memchr(idStart, 0, sectionEnd - (pos + 4)));
      if (!nul) return false;
      std::string_view identifier(reinterpret_cast<const char*>(idStart),
                                  static_cast<std::size_t>(nul - idStart));
      std::size_t docPos = static_cast<std::size_t>(nul - frame) + 1;
      int count = 0;
      while (docPos < sectionEnd) {
        if (docPos + 4 > sectionEnd) return false;
        const std::int32_t docSize = loadI32(frame + docPos);
        if (docSize < 5 || docPos + static_cast<std::size_t>(docSize) > sectionEnd) return false;
        docPos += static_cast<std::size_t>(docSize);
        ++count;
      }
      if (identifier == "documents") req.documentsInSequence = count;
    } else {
      return false;
    }
    pos += static_cast<std::size_t>(size);
  }
  return req.body != nullptr;
}

bool parseOpQuery(const std::uint8_t* frame, std::size_t len, RequestView& req) {
  std::size_t pos = kHeaderSize + 4;  // header + flags
  if (len < pos + 1) return false;
  const auto* nsStart = frame + pos;
  const auto* nul = static_cast<const std::uint8_t*>(std::memchr(nsStart, 0, len - pos));
  if (!nul) return false;
  std::string_view ns(reinterpret_cast<const char*>(nsStart),
                      static_cast<std::size_t>(nul - nsStart));
  req.legacyDb = ns.substr(0, ns.find('.'));
  pos = static_cast<std::size_t>(nul - frame) + 1 + 8;  // numberToSkip, numberToReturn
  if (pos + 5 > len) return false;
  const std::int32_t size = loadI32(frame + pos);
  if (size < 5 || pos + static_cast<std::size_t>(size) > len) return false;
  req.body = frame + pos;
  req.bodyLen = static_cast<std::uint32_t>(size);
  return true;
}

// What the body says, read with one pass of a libbson iterator.
struct CommandFacts {
  std::string_view name;
  std::string_view firstString;  // the value of the first field, when it is a string
  std::string_view db;
  std::string_view collection;   // getMore's "collection"
  int limit = 0;
  int documentsInBody = -1;
};

std::string_view iterString(const bson_iter_t* it) {
  std::uint32_t len = 0;
  const char* s = bson_iter_utf8(it, &len);
  return {s, len};
}

bool readCommand(const std::uint8_t* body, std::uint32_t len, CommandFacts& facts) {
  bson_iter_t it;
  if (!bson_iter_init_from_data(&it, body, len) || !bson_iter_next(&it)) return false;
  if (std::strcmp(bson_iter_key(&it), "$query") == 0 && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    // Legacy OP_QUERY wrapping: the command is the $query document.
    std::uint32_t innerLen = 0;
    const std::uint8_t* inner = nullptr;
    bson_iter_document(&it, &innerLen, &inner);
    if (!bson_iter_init_from_data(&it, inner, innerLen) || !bson_iter_next(&it)) return false;
  }
  facts.name = std::string_view(bson_iter_key(&it), bson_iter_key_len(&it));
  if (BSON_ITER_HOLDS_UTF8(&it)) facts.firstString = iterString(&it);
  while (bson_iter_next(&it)) {
    const char* key = bson_iter_key(&it);
    if (std::strcmp(key, "$db") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
      facts.db = iterString(&it);
    } else if (std::strcmp(key, "limit") == 0 && BSON_ITER_HOLDS_NUMBER(&it)) {
      std::int64_t limit = bson_iter_as_int64(&it);
      if (limit < 0) limit = -limit;
      facts.limit = static_cast<int>(limit > kMaxFindDocs ? kMaxFindDocs : limit);
    } else if (std::strcmp(key, "collection") == 0 && BSON_ITER_HOLDS_UTF8(&it)) {
      facts.collection = iterString(&it);
    } else if (std::strcmp(key, "documents") == 0 && BSON_ITER_HOLDS_ARRAY(&it)) {
      bson_iter_t child;
      int count = 0;
      if (bson_iter_recurse(&it, &child)) {
        while (bson_iter_next(&child)) ++count;
      }
      facts.documentsInBody = count;
    }
  }
  return true;
}

bool isHandshake(std::string_view name) {
  auto equalsIgnoreCase = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      char x = a[i], y = b[i];
      if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
      if (x != y) return false;
    }
    return true;
  };
  return equalsIgnoreCase(name, "hello") || equalsIgnoreCase(name, "ismaster");
}

// ---- reply framing --------------------------------------------------------------------------

class ReplyFrame {
 public:
  // Starts an OP_MSG (flags 0, one kind-0 section) or OP_REPLY (one document) frame.
  ReplyFrame(ByteWriter& w, std::int32_t& nextRequestId, const RequestView& req)
      : w_(w), start_(w.size()), legacy_(req.opCode == kOpQuery) {
    w_.i32(0);  // messageLength, patched in finish()
    w_.i32(++nextRequestId);
    w_.i32(req.requestId);
    w_.i32(legacy_ ? kOpReply : kOpMsg);
    if (legacy_) {
      w_.i32(0);  // responseFlags
      w_.i64(0);  // cursorID
      w_.i32(0);  // startingFrom
      w_.i32(1);  // numberReturned
    } else {
      w_.i32(0);  // flagBits
      w_.u8(0);   // section kind 0
    }
  }
  void finish() { w_.patchI32(start_, static_cast<std::int32_t>(w_.size() - start_)); }

 private:
  ByteWriter& w_;
  std::size_t start_;
  bool legacy_;
};

struct Shared {
  CannedReplies replies;
  ProductArrays products;
};

// Writes {cursor: {<batchKey>: <array>, id: 0, ns: "<db>.<coll>"}, ok: 1.0}.
void writeCursorReply(ByteWriter& w, std::string_view batchKey,
                      const std::vector<std::uint8_t>& array, std::string_view db,
                      std::string_view coll) {
  const std::size_t docStart = w.size();
  w.i32(0);
  w.u8(0x03);
  w.cstr("cursor");
  const std::size_t cursorStart = w.size();
  w.i32(0);
  w.u8(0x04);
  w.cstr(batchKey);
  w.bytes(array.data(), array.size());
  w.u8(0x12);
  w.cstr("id");
  w.i64(0);
  w.u8(0x02);
  w.cstr("ns");
  w.i32(static_cast<std::int32_t>(db.size() + 1 + coll.size() + 1));
  w.bytes(db.data(), db.size());
  w.u8('.');
  w.cstr(coll);
  w.u8(0);
  w.patchI32(cursorStart, static_cast<std::int32_t>(w.size() - cursorStart));
  w.u8(0x01);
  w.cstr("ok");
  w.f64(1.0);
  w.u8(0);
  w.patchI32(docStart, static_cast<std::int32_t>(w.size() - docStart));
}

enum class FrameResult { kOk, kProtocolError };

// Appends the reply to one complete frame (if it wants one) to `w`.
FrameResult answer(const std::uint8_t* frame, std::size_t len, ByteWriter& w, Shared& shared,
                   std::int32_t connectionId, std::int32_t& nextRequestId) {
  RequestView req;
  req.requestId = loadI32(frame + 4);
  req.opCode = loadI32(frame + 12);
  bool parsed = false;
  if (req.opCode == kOpMsg) {
    parsed = parseOpMsg(frame, len, req);
  } else if (req.opCode == kOpQuery) {
    parsed = parseOpQuery(frame, len, req);
  }
  if (!parsed) return FrameResult::kProtocolError;
  CommandFacts facts;
  if (!readCommand(req.body, req.bodyLen, facts)) return FrameResult::kProtocolError;
  if (req.opCode == kOpMsg && (req.flags & kMoreToCome)) return FrameResult::kOk;  // no reply
  const std::string_view db = req.opCode == kOpQuery ? req.legacyDb : facts.db;

  ReplyFrame reply(w, nextRequestId, req);
  const CannedReplies& canned = shared.replies;
  if (isHandshake(facts.name)) {
    const bool helloSpelling = req.opCode == kOpMsg && facts.name == "hello";
    const auto& doc = helloSpelling ? canned.helloMsg : canned.isMasterMsg;
    const std::size_t at = w.size();
    w.bytes(doc.data(), doc.size());
    storeI32(w.at(at + CannedReplies::kConnectionIdOffset), connectionId);
  } else if (facts.name == "find") {
    const int k = facts.limit > 0 ? facts.limit : 1;
    writeCursorReply(w, "firstBatch", shared.products.get(k), db, facts.firstString);
  } else if (facts.name == "getMore") {
    writeCursorReply(w, "nextBatch", canned.emptyArray, db, facts.collection);
  } else if (facts.name == "insert") {
    const int n = req.documentsInSequence >= 0 ? req.documentsInSequence
                                               : (facts.documentsInBody > 0 ? facts.documentsInBody : 0);
    const std::size_t at = w.size();
    w.bytes(canned.insertTemplate.data(), canned.insertTemplate.size());
    storeI32(w.at(at + CannedReplies::kInsertNOffset), n);
  } else {
    w.bytes(canned.ok.data(), canned.ok.size());
  }
  reply.finish();
  return FrameResult::kOk;
}

// ---- sessions -------------------------------------------------------------------------------

std::atomic<std::int32_t> gConnectionIds{0};

asio::awaitable<void> serveConnection(tcp::socket socket, Shared& shared) {
  const std::int32_t connectionId = ++gConnectionIds;
  std::int32_t nextRequestId = 0;
  std::vector<std::uint8_t> in(kInitialBuffer);
  std::vector<std::uint8_t> out;
  out.reserve(kInitialBuffer);
  std::size_t filled = 0;
  boost::system::error_code ec;
  for (;;) {
    const std::size_t n = co_await socket.async_read_some(
        asio::buffer(in.data() + filled, in.size() - filled),
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    filled += n;

    out.clear();
    ByteWriter writer(out);
    std::size_t pos = 0;
    while (filled - pos >= kHeaderSize) {
      const std::int32_t length = loadI32(in.data() + pos);
      if (length < static_cast<std::int32_t>(kHeaderSize) || length > kMaxMessageSize) co_return;
      const auto frameLen = static_cast<std::size_t>(length);
      if (filled - pos < frameLen) {
        if (frameLen > in.size()) {
          // Make room for the whole frame; keep what we have at the front.
          std::memmove(in.data(), in.data() + pos, filled - pos);
          filled -= pos;
          pos = 0;
          in.resize(frameLen);
        }
        break;
      }
      if (answer(in.data() + pos, frameLen, writer, shared, connectionId, nextRequestId) !=
          FrameResult::kOk) {
        co_return;  // garbage costs only this connection
      }
      pos += frameLen;
    }
    if (pos > 0) {
      std::memmove(in.data(), in.data() + pos, filled - pos);
      filled -= pos;
    }
    if (filled == in.size()) in.resize(in.size() * 2);
    if (!out.empty()) {
      co_await asio::async_write(socket, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }
}

asio::awaitable<void> acceptLoop(tcp::acceptor& acceptor,
                                 std::vector<std::unique_ptr<asio::io_context>>& contexts,
                                 Shared& shared) {
  std::size_t next = 0;
  for (;;) {
    asio::io_context& target = *contexts[next++ % contexts.size()];
    tcp::socket socket(target);
    boost::system::error_code ec;
    co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(target, serveConnection(std::move(socket), shared), asio::detached);
  }
}

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::string portFile;
  int threads = 1;
  int maxWireVersion = 21;
};

[[noreturn]] void usage(const char* argv0) {
  std::cerr << "usage: " << argv0
            << " [--host 127.0.0.1] [--port 0] [--port-file PATH] [--threads N]"
               " [--max-wire-version 21]\n";
  std::exit(2);
}

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0]);
      return argv[++i];
    };
    if (arg == "--host") {
      o.host = value();
    } else if (arg == "--port") {
      o.port = static_cast<unsigned short>(std::stoi(value()));
    } else if (arg == "--port-file") {
      o.portFile = value();
    } else if (arg == "--threads") {
      o.threads = std::max(1, std::stoi(value()));
    } else if (arg == "--max-wire-version") {
      o.maxWireVersion = std::stoi(value());
    } else {
      usage(argv[0]);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parseOptions(argc, argv);
  Shared shared{buildCannedReplies(options.maxWireVersion), {}};

  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (int i = 0; i < options.threads; ++i) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
    guards.push_back(asio::make_work_guard(*contexts.back()));
  }

  tcp::acceptor acceptor(*contexts[0]);
  try {
    const tcp::endpoint endpoint(asio::ip::make_address(options.host), options.port);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const std::exception& e) {
    std::cerr << "canned-upstream: cannot listen on " << options.host << ":" << options.port
              << ": " << e.what() << "\n";
    return 1;
  }
  const unsigned short port = acceptor.local_endpoint().port();

  if (!options.portFile.empty()) {
    const std::string tmp = options.portFile + ".tmp";
    {
      std::ofstream file(tmp, std::ios::trunc);
      file << port << "\n";
    }
    std::rename(tmp.c_str(), options.portFile.c_str());
  }

  asio::signal_set signals(*contexts[0], SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code&, int) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    for (auto& guard : guards) guard.reset();
    for (auto& context : contexts) context->stop();
  });
  asio::co_spawn(*contexts[0], acceptLoop(acceptor, contexts, shared), asio::detached);

  std::cout << "canned-upstream listening on " << options.host << ":" << port << std::endl;

  std::vector<std::thread> workers;
  for (int i = 1; i < options.threads; ++i) {
    workers.emplace_back([&contexts, i] { contexts[i]->run(); });
  }
  contexts[0]->run();
  for (auto& worker : workers) worker.join();
  return 0;
}
