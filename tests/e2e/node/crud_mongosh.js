// CRUD through mongogate with mongosh:
//   npx mongosh "$URI" --quiet --norc --file crud_mongosh.js
// Env: E2E_DB, E2E_COLLECTION. Any failed check throws, which makes mongosh exit non-zero.
function check(cond, message) {
  if (!cond) throw new Error('check failed: ' + message);
}
function checkEq(actual, expected, message) {
  const a = EJSON.stringify(actual);
  const e = EJSON.stringify(expected);
  if (a !== e) throw new Error('check failed: ' + message + ': got ' + a + ', want ' + e);
}

const target = db.getSiblingDB(process.env.E2E_DB || 'e2e_mongosh');
const collName = process.env.E2E_COLLECTION || 'mongosh_crud';
const coll = target.getCollection(collName);
coll.drop();

const hello = db.hello();
checkEq(hello.ok, 1, 'hello.ok');

const one = coll.insertOne({ _id: 'first', kind: 'single', n: -1 });
check(one.acknowledged, 'insertOne acknowledged');
const docs = [];
for (let i = 0; i < 30; i++) docs.push({ _id: i, kind: 'bulk', n: i, group: i % 3 });
const many = coll.insertMany(docs);
checkEq(Object.keys(many.insertedIds).length, 30, 'insertMany count');

checkEq(coll.find({ kind: 'bulk' }, { _id: 0, n: 1 }).sort({ n: -1 }).limit(3).toArray(),
  [{ n: 29 }, { n: 28 }, { n: 27 }], 'find sort limit projection');
checkEq(coll.find({ kind: 'bulk' }).batchSize(4).toArray().length, 30, 'find with getMore');

const upd = coll.updateOne({ _id: 'first' }, { $set: { n: 1 } });
checkEq(upd.modifiedCount, 1, 'updateOne modified');
const updMany = coll.updateMany({ group: 0 }, { $set: { zero: true } });
checkEq(updMany.modifiedCount, 10, 'updateMany modified');
const ups = coll.updateOne({ _id: 'u' }, { $set: { kind: 'upsert' } }, { upsert: true });
checkEq(ups.upsertedCount, 1, 'upsertedCount');
// mongosh's UpdateResult names the upserted _id insertedId (the Node driver: upsertedId).
checkEq(ups.insertedId ?? ups.upsertedId, 'u', 'upserted _id');

checkEq(coll.countDocuments({ zero: true }), 10, 'countDocuments');
checkEq(coll.aggregate([
  { $match: { kind: 'bulk' } },
  { $group: { _id: '$group', count: { $sum: 1 } } },
  { $sort: { _id: 1 } },
]).toArray(), [{ _id: 0, count: 10 }, { _id: 1, count: 10 }, { _id: 2, count: 10 }],
'aggregate');

checkEq(coll.deleteMany({ n: { $gte: 15 } }).deletedCount, 15, 'deleteMany');
checkEq(coll.deleteOne({ _id: 'u' }).deletedCount, 1, 'deleteOne');
checkEq(coll.countDocuments({}), 16, 'count after deletes');
check(target.getCollectionNames().includes(collName), 'listCollections shows the collection');

print(EJSON.stringify({ ok: true, db: target.getName(), collection: collName }));
