// A mongoose model through mongogate: schema validation, create, query, update, lean reads.
//
// Env: MONGODB_URI (the proxy), E2E_DB, E2E_COLLECTION. Exits 0 only when every assertion holds.
import assert from 'node:assert/strict';
import mongoose from 'mongoose';

import { target, timeouts, uri } from './connection.mjs';

const { dbName, collName } = target('e2e_node', `mongoose_products_${process.pid}`);

const productSchema = new mongoose.Schema({
  sku: { type: String, required: true, unique: true },
  name: { type: String, required: true },
  price: { type: Number, min: 0 },
  stock: { type: Number, default: 0 },
}, { collection: collName, autoIndex: false, autoCreate: false });

async function main() {
  await mongoose.connect(uri, { dbName, ...timeouts, maxPoolSize: 5 });
  const Product = mongoose.model('Product', productSchema);
  await Product.deleteMany({});

  await Product.create([
    { sku: 'A-1', name: 'apple', price: 3, stock: 10 },
    { sku: 'B-2', name: 'bread', price: 5 },
    { sku: 'C-3', name: 'cheese', price: 12, stock: 4 },
  ]);
  await assert.rejects(Product.create({ sku: 'X', name: 'bad', price: -1 }),
    (err) => err instanceof mongoose.Error.ValidationError);

  const cheap = await Product.find({ price: { $lt: 10 } }).sort({ price: 1 }).lean();
  assert.deepEqual(cheap.map((p) => p.sku), ['A-1', 'B-2']);
  assert.equal(cheap[1].stock, 0, 'schema default applied');

  const res = await Product.updateOne({ sku: 'B-2' }, { $inc: { stock: 7 } });
  assert.equal(res.modifiedCount, 1);
  const bread = await Product.findOne({ sku: 'B-2' });
  assert.equal(bread.stock, 7);
  bread.price = 6;
  await bread.save();

  const total = await Product.aggregate([
    { $group: { _id: null, value: { $sum: { $multiply: ['$price', '$stock'] } } } },
  ]);
  assert.equal(total[0].value, 3 * 10 + 6 * 7 + 12 * 4);

  assert.equal(await Product.countDocuments(), 3);
  const del = await Product.deleteOne({ sku: 'A-1' });
  assert.equal(del.deletedCount, 1);
  assert.equal(await Product.countDocuments(), 2);

  console.log(JSON.stringify({ ok: true, db: dbName, collection: collName }));
}

try {
  await main();
} catch (err) {
  console.error('mongoose.mjs failed:', err);
  process.exitCode = 1;
} finally {
  await mongoose.disconnect();
}
