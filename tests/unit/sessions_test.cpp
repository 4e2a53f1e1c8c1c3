// Sessions across several deployments (proxy/sessions.h): transaction pins, endSessions
// split, and causal-consistency fields that never cross from one cluster to another.
#include "proxy/sessions.h"

#include <bson/bson.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace mongogate::proxy {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes bytesOf(bson_t* b) {
  Bytes v(bson_get_data(b), bson_get_data(b) + b->len);
  bson_destroy(b);
  return v;
}

void appendLsid(bson_t* doc, const char* key, std::uint8_t fill) {
  std::uint8_t id[16];
  std::memset(id, fill, sizeof id);
  bson_t lsid;
  BSON_APPEND_DOCUMENT_BEGIN(doc, key, &lsid);
  bson_append_binary(&lsid, "id", -1, BSON_SUBTYPE_UUID, id, 16);
  bson_append_document_end(doc, &lsid);
}

SessionKey keyOf(std::uint8_t fill) {
  SessionKey key;
  key.fill(fill);
  return key;
}

void appendClusterTime(bson_t* doc, std::uint32_t seconds, std::uint32_t increment, std::int64_t keyId) {
  bson_t ct, sig;
  BSON_APPEND_DOCUMENT_BEGIN(doc, "$clusterTime", &ct);
  bson_append_timestamp(&ct, "clusterTime", -1, seconds, increment);
  BSON_APPEND_DOCUMENT_BEGIN(&ct, "signature", &sig);
  BSON_APPEND_INT64(&sig, "keyId", keyId);
  bson_append_document_end(&ct, &sig);
  bson_append_document_end(doc, &ct);
}

// A find with lsid 0x11.., $clusterTime signed by `keyId`, and readConcern.afterClusterTime.
Bytes causalFind(std::int64_t keyId, std::uint32_t afterIncrement) {
  bson_t b = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&b, "find", "c");
  appendLsid(&b, "lsid", 0x11);
  appendClusterTime(&b, 100, 5, keyId);
  bson_t rc;
  BSON_APPEND_DOCUMENT_BEGIN(&b, "readConcern", &rc);
  BSON_APPEND_UTF8(&rc, "level", "majority");
  bson_append_timestamp(&rc, "afterClusterTime", -1, 100, afterIncrement);
  bson_append_document_end(&b, &rc);
  BSON_APPEND_UTF8(&b, "$db", "t");
  return bytesOf(&b);
}

std::int64_t keyIdIn(const Bytes& body) {
  bson_iter_t it, found;
  if (!bson_iter_init_from_data(&it, body.data(), body.size()) ||
      !bson_iter_find_descendant(&it, "$clusterTime.signature.keyId", &found)) {
    return -1;
  }
  return bson_iter_as_int64(&found);
}

std::optional<std::uint32_t> afterClusterTimeIncrement(const Bytes& body) {
  bson_iter_t it, found;
  if (!bson_iter_init_from_data(&it, body.data(), body.size()) ||
      !bson_iter_find_descendant(&it, "readConcern.afterClusterTime", &found)) {
    return std::nullopt;
  }
  std::uint32_t seconds = 0, increment = 0;
  bson_iter_timestamp(&found, &seconds, &increment);
  return increment;
}

TEST(SessionsTest, ReadsTheSessionFacts) {
  bson_t b = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&b, "insert", "c");
  appendLsid(&b, "lsid", 0x22);
  BSON_APPEND_INT64(&b, "txnNumber", 7);
  BSON_APPEND_BOOL(&b, "autocommit", false);
  BSON_APPEND_BOOL(&b, "startTransaction", true);
  const Bytes body = bytesOf(&b);
  SessionFacts facts;
  ASSERT_TRUE(readSessionFacts(body, facts));
  ASSERT_TRUE(facts.key);
  EXPECT_EQ(*facts.key, keyOf(0x22));
  EXPECT_EQ(facts.txnNumber, 7);
  EXPECT_TRUE(facts.inTransaction);
  EXPECT_TRUE(facts.startTransaction);
  EXPECT_FALSE(facts.hasClusterTime);
  EXPECT_FALSE(facts.lsid.empty());
}

TEST(SessionsTest, TransactionIsPinnedToItsFirstDeployment) {
  SessionTable table(3, std::chrono::minutes(30));
  SessionFacts first;
  first.txnNumber = 4;
  first.inTransaction = true;
  first.startTransaction = true;
  EXPECT_EQ(table.noteCommand(keyOf(1), 2, first).check, SessionTable::Check::kOk);
  SessionFacts next = first;
  next.startTransaction = false;
  EXPECT_EQ(table.noteCommand(keyOf(1), 2, next).check, SessionTable::Check::kOk);
  const SessionTable::Verdict crossing = table.noteCommand(keyOf(1), 0, next);
  EXPECT_EQ(crossing.check, SessionTable::Check::kCrossesDeployments);
  EXPECT_EQ(crossing.pinnedDeployment, 2u);
  EXPECT_EQ(table.transactionDeployment(keyOf(1), 4), 2u);
  EXPECT_EQ(table.transactionDeployment(keyOf(1), 5), std::nullopt);  // another transaction
  EXPECT_EQ(table.transactionDeployment(keyOf(9), 4), std::nullopt);  // another session
  // The next transaction of the session may start anywhere; outside transactions,
  // a session goes wherever its commands go.
  SessionFacts later = first;
  later.txnNumber = 5;
  EXPECT_EQ(table.noteCommand(keyOf(1), 0, later).check, SessionTable::Check::kOk);
  EXPECT_EQ(table.noteCommand(keyOf(1), 1, SessionFacts{}).check, SessionTable::Check::kOk);
  EXPECT_EQ(table.deploymentsOf(keyOf(1)), 0b111u);
}

TEST(SessionsTest, EndSessionsIsSplitPerDeployment) {
  SessionTable table(3, std::chrono::minutes(30));
  table.noteCommand(keyOf(1), 0, {});
  table.noteCommand(keyOf(2), 2, {});
  table.noteCommand(keyOf(3), 0, {});
  table.noteCommand(keyOf(3), 2, {});
  bson_t b = BSON_INITIALIZER;
  bson_t ids;
  BSON_APPEND_ARRAY_BEGIN(&b, "endSessions", &ids);
  appendLsid(&ids, "0", 1);
  appendLsid(&ids, "1", 2);
  appendLsid(&ids, "2", 3);
  appendLsid(&ids, "3", 4);  // never seen: sent nowhere
  bson_append_array_end(&b, &ids);
  BSON_APPEND_UTF8(&b, "$db", "admin");
  const Bytes body = bytesOf(&b);
  std::vector<Bytes> parts(3);
  ASSERT_TRUE(splitEndSessions(table, body, parts));
  const auto countIds = [](const Bytes& part) {
    bson_iter_t it, child;
    int n = 0;
    if (bson_iter_init_from_data(&it, part.data(), part.size()) && bson_iter_find(&it, "endSessions") &&
        bson_iter_recurse(&it, &child)) {
      while (bson_iter_next(&child)) ++n;
    }
    return n;
  };
  EXPECT_EQ(countIds(parts[0]), 2);  // sessions 1 and 3
  EXPECT_TRUE(parts[1].empty());     // saw none
  EXPECT_EQ(countIds(parts[2]), 2);  // sessions 2 and 3
  EXPECT_EQ(table.size(), 0u);       // ended sessions are forgotten
}

TEST(SessionsTest, ForeignClusterTimeIsReplacedOrRemoved) {
  SessionTable table(2, std::chrono::minutes(30));
  const Bytes body = causalFind(/*keyId of deployment 0*/ 1, 1'000'005);
  SessionFacts facts;
  ASSERT_TRUE(readSessionFacts(body, facts));
  EXPECT_TRUE(facts.hasClusterTime);
  EXPECT_TRUE(facts.hasAfterClusterTime);

  // Deployment 1 has issued nothing yet: both fields go, the rest stays.
  Bytes out;
  ASSERT_TRUE(rewriteCausalFields(table, facts, 1, body, out));
  EXPECT_EQ(keyIdIn(out), -1);
  EXPECT_EQ(afterClusterTimeIncrement(out), std::nullopt);
  bson_iter_t it, found;
  ASSERT_TRUE(bson_iter_init_from_data(&it, out.data(), out.size()) &&
              bson_iter_find_descendant(&it, "readConcern.level", &found));
  EXPECT_STREQ(bson_iter_utf8(&found, nullptr), "majority");

  // Once deployment 1 answered the session, its own times are used.
  bson_t reply = BSON_INITIALIZER;
  BSON_APPEND_DOUBLE(&reply, "ok", 1.0);
  bson_append_timestamp(&reply, "operationTime", -1, 100, 2'000'003);
  appendClusterTime(&reply, 100, 2'000'003, 2);
  const Bytes replyBody = bytesOf(&reply);
  noteReplyTimes(table, facts, 1, replyBody);
  out.clear();
  ASSERT_TRUE(rewriteCausalFields(table, facts, 1, body, out));
  EXPECT_EQ(keyIdIn(out), 2);
  EXPECT_EQ(afterClusterTimeIncrement(out), 2'000'003u);

  // A body that already carries the target's own times is left alone.
  bson_t own = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&own, "find", "c");
  appendLsid(&own, "lsid", 0x11);
  appendClusterTime(&own, 100, 2'000'003, 2);
  bson_t rc;
  BSON_APPEND_DOCUMENT_BEGIN(&own, "readConcern", &rc);
  bson_append_timestamp(&rc, "afterClusterTime", -1, 100, 2'000'003);
  bson_append_document_end(&own, &rc);
  const Bytes ownBody = bytesOf(&own);
  SessionFacts ownFacts;
  ASSERT_TRUE(readSessionFacts(ownBody, ownFacts));
  out.clear();
  EXPECT_FALSE(rewriteCausalFields(table, ownFacts, 1, ownBody, out));
  EXPECT_TRUE(rewriteCausalFields(table, ownFacts, 0, ownBody, out));  // but not for deployment 0

  // A body without causal fields is left alone.
  bson_t plain = BSON_INITIALIZER;
  BSON_APPEND_INT32(&plain, "ping", 1);
  const Bytes ping = bytesOf(&plain);
  SessionFacts none;
  ASSERT_TRUE(readSessionFacts(ping, none));
  out.clear();
  EXPECT_FALSE(rewriteCausalFields(table, none, 1, ping, out));
  EXPECT_TRUE(out.empty());
}

TEST(SessionsTest, KeepsTheHighestClusterTimePerDeployment) {
  SessionTable table(2, std::chrono::minutes(30));
  const auto clusterTimeDoc = [](std::uint32_t increment) {
    bson_t b = BSON_INITIALIZER;
    bson_append_timestamp(&b, "clusterTime", -1, 100, increment);
    return bytesOf(&b);
  };
  table.noteClusterTime(0, clusterTimeDoc(9));
  table.noteClusterTime(0, clusterTimeDoc(3));  // older: ignored
  Bytes out;
  ASSERT_TRUE(table.clusterTime(0, out));
  EXPECT_EQ(out, clusterTimeDoc(9));
  EXPECT_FALSE(table.clusterTime(1, out));
}

TEST(SessionsTest, AbortTransactionCarriesTheSession) {
  bson_t b = BSON_INITIALIZER;
  appendLsid(&b, "lsid", 0x33);
  const Bytes holder = bytesOf(&b);
  SessionFacts facts;
  ASSERT_TRUE(readSessionFacts(holder, facts));
  Bytes out;
  appendAbortTransaction(out, facts.lsid, 12);
  SessionFacts abort;
  ASSERT_TRUE(readSessionFacts(out, abort));
  EXPECT_EQ(abort.key, keyOf(0x33));
  EXPECT_EQ(abort.txnNumber, 12);
  EXPECT_TRUE(abort.inTransaction);
}

TEST(OpenTransactionsTest, StartTransactionIsFoundAtTheTopLevelOnly) {
  bson_t start = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&start, "insert", "orders");
  appendLsid(&start, "lsid", 0x01);
  BSON_APPEND_BOOL(&start, "startTransaction", true);
  BSON_APPEND_BOOL(&start, "autocommit", false);
  EXPECT_TRUE(startsTransaction(bytesOf(&start)));

  bson_t later = BSON_INITIALIZER;  // a later statement of the transaction
  BSON_APPEND_UTF8(&later, "insert", "orders");
  BSON_APPEND_BOOL(&later, "autocommit", false);
  EXPECT_FALSE(startsTransaction(bytesOf(&later)));

  bson_t nested = BSON_INITIALIZER;  // a field of a document is not the command's
  BSON_APPEND_UTF8(&nested, "find", "orders");
  bson_t filter;
  BSON_APPEND_DOCUMENT_BEGIN(&nested, "filter", &filter);
  BSON_APPEND_BOOL(&filter, "startTransaction", true);
  bson_append_document_end(&nested, &filter);
  EXPECT_FALSE(startsTransaction(bytesOf(&nested)));

  bson_t off = BSON_INITIALIZER;
  BSON_APPEND_UTF8(&off, "insert", "orders");
  BSON_APPEND_BOOL(&off, "startTransaction", false);
  EXPECT_FALSE(startsTransaction(bytesOf(&off)));
  EXPECT_FALSE(startsTransaction({}));
}

TEST(OpenTransactionsTest, CommitAbortLaterTxnNumberAndConnectionCloseEndThem) {
  OpenTransactions open;
  open.started(keyOf(1), 5, /*connectionId=*/10);
  open.started(keyOf(2), 1, 10);
  open.started(keyOf(3), 7, 11);
  EXPECT_EQ(open.open(), 3u);
  open.ended(keyOf(1), 4);  // another transaction of the session: not this one
  EXPECT_EQ(open.open(), 3u);
  open.ended(keyOf(1), 5);
  EXPECT_EQ(open.open(), 2u);
  open.started(keyOf(3), 8, 12);  // a later txnNumber replaces the session's earlier one
  EXPECT_EQ(open.open(), 2u);
  open.ended(keyOf(3), 7);
  EXPECT_EQ(open.open(), 2u);
  open.started(keyOf(3), 7, 12);  // a stale statement does not bring the old one back
  open.ended(keyOf(3), 8);
  EXPECT_EQ(open.open(), 1u);
  open.connectionClosed(11);  // started nothing that is still open
  EXPECT_EQ(open.open(), 1u);
  open.connectionClosed(10);
  EXPECT_EQ(open.open(), 0u);
}

TEST(OpenTransactionsTest, ExpireAfterTheirLifetime) {
  OpenTransactions open(std::chrono::seconds(60));
  const auto t0 = OpenTransactions::Clock::now();
  open.started(keyOf(1), 1, 1, t0);
  open.started(keyOf(2), 1, 1, t0 + std::chrono::seconds(30));
  EXPECT_EQ(open.open(t0 + std::chrono::seconds(59)), 2u);
  EXPECT_EQ(open.open(t0 + std::chrono::seconds(60)), 1u);
  EXPECT_EQ(open.open(t0 + std::chrono::seconds(90)), 0u);
}

}  // namespace
}  // namespace mongogate::proxy
