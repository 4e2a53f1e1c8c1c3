// Authentication through mongogate with the Node driver or mongoose (tests/e2e/test_auth.py).
//
// Env: MONGODB_URI (the proxy, credentials included), E2E_CLIENT (driver | mongoose),
// E2E_DB, E2E_COLLECTION. Writes one document and reads it back. Prints one JSON line:
// {ok: true, found} on success, or {ok: false, code, codeName} when the server refused;
// exits 0 either way (the Python side asserts), 1 on anything unexpected.
import { MongoClient } from 'mongodb';
import mongoose from 'mongoose';

import { target, timeouts, uri } from './connection.mjs';

const kind = process.env.E2E_CLIENT ?? 'driver';
const { dbName, collName } = target('e2e_auth', `auth_${process.pid}`);
const options = { ...timeouts, maxPoolSize: 2 };

async function withDriver() {
  const client = new MongoClient(uri, options);
  try {
    await client.connect();
    const coll = client.db(dbName).collection(collName);
    await coll.insertOne({ _id: `node-${process.pid}`, by: 'driver' });
    return await coll.countDocuments({ by: 'driver' });
  } finally {
    await client.close();
  }
}

async function withMongoose() {
  const schema = new mongoose.Schema({ _id: String, by: String },
    { collection: collName, autoIndex: false, autoCreate: false });
  await mongoose.connect(uri, { ...options, dbName });
  try {
    const Item = mongoose.model('Item', schema);
    await Item.create({ _id: `mongoose-${process.pid}`, by: 'mongoose' });
    return await Item.countDocuments({ by: 'mongoose' });
  } finally {
    await mongoose.disconnect();
  }
}

try {
  const found = kind === 'mongoose' ? await withMongoose() : await withDriver();
  console.log(JSON.stringify({ ok: true, found }));
} catch (e) {
  if (typeof e?.code !== 'number') {
    console.error(e);
    process.exit(1);
  }
  console.log(JSON.stringify({ ok: false, code: e.code, codeName: e.codeName ?? null, message: e.message }));
}
