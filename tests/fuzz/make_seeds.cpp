// Writes the fuzzers' seed corpus: valid frames of every shape the parsers know, built
// with wire/'s own builders and libbson. Usage: fuzz_make_seeds OUT_DIR
// Creates OUT_DIR/{op_msg,op_query,op_reply,op_compressed}/seed-N.
#include <bson/bson.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "wire/builder.h"
#include "wire/compression.h"
#include "wire/crc32c.h"
#include "wire/legacy.h"

using namespace mongogate::wire;
using ByteVec = std::vector<std::uint8_t>;

namespace {

ByteVec json(const char* text) {
  bson_error_t error;
  bson_t* doc = bson_new_from_json(reinterpret_cast<const std::uint8_t*>(text), -1, &error);
  if (doc == nullptr) {
    std::fprintf(stderr, "bad seed JSON %s: %s\n", text, error.message);
    std::exit(1);
  }
  ByteVec out(bson_get_data(doc), bson_get_data(doc) + doc->len);
  bson_destroy(doc);
  return out;
}

void append(ByteVec& out, const ByteVec& bytes) { out.insert(out.end(), bytes.begin(), bytes.end()); }

void appendInt32(ByteVec& out, std::int32_t v) {
  out.resize(out.size() + 4);
  storeInt32LE(out.data() + out.size() - 4, v);
}

ByteVec sequence(const char* identifier, const std::vector<ByteVec>& docs) {
  ByteVec payload(identifier, identifier + std::strlen(identifier) + 1);
  for (const auto& d : docs) append(payload, d);
  ByteVec out = {1};
  appendInt32(out, static_cast<std::int32_t>(payload.size() + 4));
  append(out, payload);
  return out;
}

// An OP_MSG with the body at position `bodyAt` among `sequences`.
ByteVec opMsg(std::uint32_t flags, const ByteVec& body, const std::vector<ByteVec>& sequences, std::size_t bodyAt,
              bool checksum) {
  ByteVec out(kHeaderSize);
  writeHeader(out.data(), MsgHeader{0, 1, 0, static_cast<std::int32_t>(OpCode::kMsg)});
  appendInt32(out, static_cast<std::int32_t>(flags | (checksum ? msgflags::kChecksumPresent : 0)));
  for (std::size_t i = 0; i <= sequences.size(); ++i) {
    if (i == bodyAt) {
      out.push_back(0);
      append(out, body);
    }
    if (i < sequences.size()) append(out, sequences[i]);
  }
  storeInt32LE(out.data(), static_cast<std::int32_t>(out.size() + (checksum ? 4 : 0)));
  if (checksum) appendInt32(out, static_cast<std::int32_t>(crc32c(Bytes(out))));
  return out;
}

ByteVec opQuery(const char* ns, const ByteVec& query, const ByteVec* selector) {
  ByteVec out(kHeaderSize);
  writeHeader(out.data(), MsgHeader{0, 3, 0, static_cast<std::int32_t>(OpCode::kQuery)});
  appendInt32(out, 4);
  out.insert(out.end(), ns, ns + std::strlen(ns) + 1);
  appendInt32(out, 0);
  appendInt32(out, -1);
  append(out, query);
  if (selector != nullptr) append(out, *selector);
  storeInt32LE(out.data(), static_cast<std::int32_t>(out.size()));
  return out;
}

void write(const std::filesystem::path& dir, const std::vector<ByteVec>& seeds) {
  std::filesystem::create_directories(dir);
  for (std::size_t i = 0; i < seeds.size(); ++i) {
    std::ofstream(dir / ("seed-" + std::to_string(i)), std::ios::binary)
        .write(reinterpret_cast<const char*>(seeds[i].data()), static_cast<std::streamsize>(seeds[i].size()));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path out = argv[1];

  const ByteVec hello = json(R"({"hello": 1, "helloOk": true, "$db": "admin"})");
  const ByteVec insert = json(R"({"insert": "s1_orders", "ordered": true, "$db": "main_db"})");
  const ByteVec find = json(
      R"({"find": "c", "filter": {"a": {"$in": [1, 2.5, "x", null, true]}, "d": {"$date": "2024-01-01T00:00:00Z"}},)"
      R"( "sort": {"_id": -1}, "limit": {"$numberLong": "5"}, "$db": "db"})");
  const ByteVec aggregate = json(
      R"({"aggregate": "orders", "pipeline": [{"$lookup": {"from": "users", "localField": "u", "foreignField": "_id",)"
      R"( "as": "user"}}, {"$out": "report"}], "cursor": {}, "$db": "store_s1"})");
  const ByteVec doc1 = json(R"({"_id": {"$oid": "0123456789abcdef01234567"}, "sku": "A-1", "qty": 3})");
  const ByteVec doc2 = json(R"({"_id": 2, "bin": {"$binary": {"base64": "AQID", "subType": "00"}}, "r": {"$regex": "^a", "$options": "i"}})");

  ByteVec error;
  const std::string_view labels[] = {"RetryableWriteError"};
  appendOpMsgError(error, 9, 1, {.code = 6, .codeName = "HostUnreachable", .errmsg = "down", .labels = labels});

  std::vector<ByteVec> msgs = {
      opMsg(0, hello, {}, 0, false),
      opMsg(msgflags::kExhaustAllowed, hello, {}, 0, false),
      opMsg(0, insert, {sequence("documents", {doc1, doc2})}, 0, false),
      opMsg(msgflags::kMoreToCome, insert, {sequence("documents", {doc1})}, 1, false),
      opMsg(0, insert, {sequence("documents", {doc1, doc2})}, 0, true),
      opMsg(0, find, {}, 0, true),
      opMsg(0, aggregate, {}, 0, false),
      opMsg(0, json(R"({"bulkWrite": 1, "$db": "admin"})"),
            {sequence("ops", {json(R"({"insert": 0, "document": {"a": 1}})")}),
             sequence("nsInfo", {json(R"({"ns": "db.c"})")}), sequence("empty", {})},
            1, false),
      error,
  };
  write(out / "op_msg", msgs);

  const ByteVec isMaster = json(R"({"isMaster": 1, "client": {"driver": {"name": "x", "version": "1"}}})");
  const ByteVec selector = json(R"({"a": 1})");
  write(out / "op_query", {opQuery("admin.$cmd", isMaster, nullptr), opQuery("app.orders", find, &selector),
                           opQuery("", json("{}"), nullptr)});

  std::vector<ByteVec> replies(3);
  const ByteVec ok = json(R"({"ismaster": true, "maxWireVersion": 21, "ok": 1.0})");
  const Bytes one[] = {Bytes(ok)};
  const Bytes two[] = {Bytes(doc1), Bytes(doc2)};
  appendOpReply(replies[0], 1, 3, replyflags::kAwaitCapable, 0, 0, one);
  appendOpReply(replies[1], 2, 3, 0, 123456789, 4, two);
  appendOpReplyError(replies[2], 3, 3, {.code = 18, .codeName = "AuthenticationFailed", .errmsg = "no"});
  write(out / "op_reply", replies);

  std::vector<ByteVec> compressed;
  for (const ByteVec& frame : {msgs[0], msgs[2], msgs[6], replies[0]}) {
    for (Compressor c : {Compressor::kNoop, Compressor::kSnappy, Compressor::kZlib, Compressor::kZstd}) {
      ByteVec wrapped;
      if (!compressFrame(Bytes(frame), c, wrapped).ok()) return 1;
      compressed.push_back(std::move(wrapped));
    }
  }
  write(out / "op_compressed", compressed);
  return 0;
}
