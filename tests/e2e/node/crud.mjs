// CRUD through mongogate with the official Node driver.
//
// Env: MONGODB_URI (the proxy), E2E_DB, E2E_COLLECTION. Exits 0 only when every assertion
// holds; prints one JSON line with what it did so the Python side can check the upstream.
import assert from 'node:assert/strict';

import { driverClient, target } from './connection.mjs';

const { dbName, collName } = target('e2e_node', `node_crud_${process.pid}`);
const client = driverClient('mongogate-e2e-node');

async function main() {
  await client.connect();
  const admin = client.db('admin');
  const hello = await admin.command({ hello: 1 });
  assert.equal(hello.ok, 1);

  const db = client.db(dbName);
  const coll = db.collection(collName);
  await coll.drop().catch(() => {});

  const one = await coll.insertOne({ _id: 'first', kind: 'single', n: -1, tags: ['a'] });
  assert.equal(one.acknowledged, true);
  assert.equal(one.insertedId, 'first');

  const many = await coll.insertMany(
    Array.from({ length: 40 }, (_, i) => ({ _id: i, kind: 'bulk', n: i, group: i % 4 })));
  assert.equal(many.insertedCount, 40);

  const firstFive = await coll.find({ kind: 'bulk', n: { $gte: 10 } })
    .sort({ n: -1 }).limit(5).project({ _id: 0, n: 1 }).toArray();
  assert.deepEqual(firstFive, [{ n: 39 }, { n: 38 }, { n: 37 }, { n: 36 }, { n: 35 }]);

  // Small batches force getMore round trips through the proxy.
  const all = await coll.find({ kind: 'bulk' }).sort({ n: 1 }).batchSize(7).toArray();
  assert.equal(all.length, 40);
  assert.deepEqual(all.map((d) => d.n), Array.from({ length: 40 }, (_, i) => i));

  const single = await coll.findOne({ _id: 'first' });
  assert.deepEqual(single.tags, ['a']);

  const upd = await coll.updateOne({ _id: 'first' }, { $set: { n: 100 }, $push: { tags: 'b' } });
  assert.equal(upd.matchedCount, 1);
  assert.equal(upd.modifiedCount, 1);
  const updMany = await coll.updateMany({ kind: 'bulk', group: 0 }, { $set: { flagged: true } });
  assert.equal(updMany.matchedCount, 10);
  assert.equal(updMany.modifiedCount, 10);
  const ups = await coll.updateOne({ _id: 'upserted' }, { $set: { kind: 'upsert', n: 7 } },
    { upsert: true });
  assert.equal(ups.upsertedCount, 1);
  assert.equal(ups.upsertedId, 'upserted');

  assert.equal(await coll.countDocuments({ flagged: true }), 10);
  assert.equal(await coll.countDocuments({}), 42);

  const groups = await coll.aggregate([
    { $match: { kind: 'bulk' } },
    { $group: { _id: '$group', total: { $sum: '$n' }, count: { $sum: 1 } } },
    { $sort: { _id: 1 } },
  ]).toArray();
  assert.deepEqual(groups, [
    { _id: 0, total: 180, count: 10 },
    { _id: 1, total: 190, count: 10 },
    { _id: 2, total: 200, count: 10 },
    { _id: 3, total: 210, count: 10 },
  ]);

  const delOne = await coll.deleteOne({ _id: 'upserted' });
  assert.equal(delOne.deletedCount, 1);
  const delMany = await coll.deleteMany({ kind: 'bulk', n: { $lt: 20 } });
  assert.equal(delMany.deletedCount, 20);
  assert.equal(await coll.countDocuments({}), 21);

  // A server error travels back as a driver error, not a hang or a dropped connection.
  await assert.rejects(coll.insertOne({ _id: 'first' }), (err) => {
    assert.equal(err.code, 11000, `expected a duplicate key error, got ${err}`);
    return true;
  });
  assert.equal(await coll.countDocuments({ _id: 'first' }), 1);

  console.log(JSON.stringify({ ok: true, db: dbName, collection: collName, remaining: 21 }));
}

try {
  await main();
} catch (err) {
  console.error('crud.mjs failed:', err);
  process.exitCode = 1;
} finally {
  await client.close();
}
