// Client-side features through mongogate with the Node driver: whatever MONGODB_URI asks
// for (tls, compressors, loadBalanced), then CRUD, a cursor that needs getMore, and — when
// E2E_TXN_COLLECTIONS names two collections of E2E_DB — one transaction that commits and
// one that aborts across them.
//
// Env: MONGODB_URI, E2E_DB, E2E_COLLECTION, E2E_TXN_COLLECTIONS ("a,b", optional).
// Prints one JSON line; exits 0 only when every assertion holds.
import assert from 'node:assert/strict';

import { driverClient, target } from './connection.mjs';

const { dbName, collName } = target('e2e_client_side', `client_side_${process.pid}`);
const txnCollections = (process.env.E2E_TXN_COLLECTIONS ?? '').split(',').filter(Boolean);
const client = driverClient('mongogate-e2e-client-side');

async function main() {
  await client.connect();
  const db = client.db(dbName);
  const coll = db.collection(collName);
  await coll.deleteMany({});
  const many = await coll.insertMany(Array.from({ length: 25 }, (_, i) => ({ _id: i, n: i })));
  assert.equal(many.insertedCount, 25);
  // batchSize 4: six getMore round trips on the same (pinned, when load balanced) connection.
  const all = await coll.find({}).sort({ n: 1 }).batchSize(4).toArray();
  assert.deepEqual(all.map((d) => d.n), Array.from({ length: 25 }, (_, i) => i));
  const upd = await coll.updateOne({ _id: 3 }, { $set: { touched: true } });
  assert.equal(upd.modifiedCount, 1);
  const del = await coll.deleteOne({ _id: 24 });
  assert.equal(del.deletedCount, 1);
  const summary = { ok: true, count: await coll.countDocuments({}) };

  if (txnCollections.length === 2) {
    const [first, second] = txnCollections.map((name) => db.collection(name));
    const session = client.startSession();
    try {
      session.startTransaction();
      await first.insertOne({ _id: 'committed', from: 'node' }, { session });
      await second.insertOne({ _id: 'committed', from: 'node' }, { session });
      await session.commitTransaction();
      session.startTransaction();
      await first.insertOne({ _id: 'aborted', from: 'node' }, { session });
      await second.insertOne({ _id: 'aborted', from: 'node' }, { session });
      await session.abortTransaction();
    } finally {
      await session.endSession();
    }
    summary.transactions = true;
  }
  console.log(JSON.stringify(summary));
}

try {
  await main();
} finally {
  await client.close();
}
