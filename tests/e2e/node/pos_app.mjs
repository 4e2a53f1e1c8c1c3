// A point-of-sale app written the way the platform writes it (background 001/002), pointed
// at mongogate instead of at MongoDB: a Store registry model on the main connection,
// per-store models built at run time on `${prefix}_products|orders|categories|brands`
// (also on the main connection — mongogate moves them to the store's database), a shared
// User model, and a MasterAdmin model on a second connection to the masteradmin database.
// The app never computes a databaseId: it creates the store without one and reads back the
// one mongogate assigned.
//
// Env: MONGODB_URI (mongogate, path /main_db), MASTER_ADMIN_MONGO_URI (mongogate, path
// /masteradmin; falls back to MONGODB_URI as in the platform), POS_STORE_COUNT (10),
// POS_PREFIX ("nd"). Prints one JSON summary line; exits non-zero on any failed assertion.
import assert from 'node:assert/strict';
import mongoose from 'mongoose';

const { Schema } = mongoose;
const uri = process.env.MONGODB_URI;
const masterAdminUri = process.env.MASTER_ADMIN_MONGO_URI || uri;
const storeCount = Number(process.env.POS_STORE_COUNT ?? 10);
const prefixBase = process.env.POS_PREFIX ?? 'nd';
assert.ok(uri, 'MONGODB_URI must be set');
assert.ok(Number.isInteger(storeCount) && storeCount > 0, 'POS_STORE_COUNT must be > 0');

const connectOptions = { serverSelectionTimeoutMS: 10000, socketTimeoutMS: 30000, maxPoolSize: 5 };

// -- schemas ---------------------------------------------------------------------------

const storeSchema = new Schema({
  storeId: { type: String, required: true, unique: true },
  name: { type: String, required: true },
  prefix: { type: String, required: true, unique: true },
  databaseId: { type: Number }, // assigned by mongogate on insert (SPEC §5)
}, { collection: 'stores', timestamps: true });

const userSchema = new Schema({
  email: { type: String, required: true },
  role: { type: String, default: 'cashier' },
  storeId: { type: String, default: null },
}, { collection: 'users' });

const masterAdminSchema = new Schema({
  username: { type: String, required: true, unique: true },
  role: { type: String, enum: ['owner', 'support'], required: true },
}, { timestamps: true });

// storeCollections.ts: one model per store and collection type, named after the collection
// so that refs can point at the same store's models.
function storeModels(connection, prefix) {
  const name = (type) => `${prefix}_${type}`;
  const model = (type, schema) => connection.models[name(type)]
    ?? connection.model(name(type), schema, name(type));

  const category = new Schema({ name: { type: String, required: true }, slug: String });
  const brand = new Schema({ name: { type: String, required: true }, country: String });
  const product = new Schema({
    sku: { type: String, required: true, unique: true },
    name: { type: String, required: true },
    price: { type: Number, min: 0, required: true },
    stock: { type: Number, default: 0 },
    store: String,
    category: { type: Schema.Types.ObjectId, ref: name('categories') },
    brand: { type: Schema.Types.ObjectId, ref: name('brands') },
  });
  const order = new Schema({
    number: { type: Number, required: true },
    items: [{
      product: { type: Schema.Types.ObjectId, ref: name('products') },
      qty: Number,
      price: Number,
    }],
    total: Number,
    status: { type: String, enum: ['open', 'paid', 'void'], default: 'open' },
  }, { timestamps: true });
  return {
    Category: model('categories', category),
    Brand: model('brands', brand),
    Product: model('products', product),
    Order: model('orders', order),
  };
}

// -- one store's life ----------------------------------------------------------------------

async function openStore(models, Store, User, i) {
  const prefix = `${prefixBase}${String(i).padStart(2, '0')}`;
  const created = await Store.create({ storeId: `node-store-${i}`, name: `Node Store ${i}`, prefix });
  assert.equal(created.databaseId, undefined, 'the app does not choose a database');
  const saved = await Store.findOne({ prefix }).lean();
  assert.ok(saved, `store ${prefix} readable right after creation`);

  const { Category, Brand, Product, Order } = storeModels(models, prefix);
  // createStoreCollections(): collections and indexes exist before the first write.
  await Promise.all([Category.init(), Brand.init(), Product.init(), Order.init()]);

  const [drinks, snacks] = await Category.insertMany([
    { name: 'Drinks', slug: 'drinks' }, { name: 'Snacks', slug: 'snacks' }]);
  const [kiwi, roo] = await Brand.create([
    { name: 'Kiwi Co', country: 'NZ' }, { name: 'Roo Ltd', country: 'AU' }]);
  const base = i;
  const productDocs = [
    { sku: `${prefix}-1`, name: 'Cola', price: 2 + base, stock: 10, category: drinks._id, brand: kiwi._id },
    { sku: `${prefix}-2`, name: 'Juice', price: 3 + base, stock: 0, category: drinks._id, brand: roo._id },
    { sku: `${prefix}-3`, name: 'Chips', price: 5 + base, stock: 5, category: snacks._id, brand: kiwi._id },
    { sku: `${prefix}-4`, name: 'Nuts', price: 8 + base, stock: 7, category: snacks._id, brand: roo._id },
    { sku: `${prefix}-5`, name: 'Water', price: 13 + base, stock: 1, category: drinks._id, brand: kiwi._id },
  ].map((p) => ({ ...p, store: prefix }));
  const products = await Product.create(productDocs);
  const bySku = Object.fromEntries(products.map((p) => [p.sku, p]));

  // Validation and the unique index both hold, and the duplicate-key error names the
  // logical namespace.
  await assert.rejects(Product.create({ sku: `${prefix}-9`, name: 'Bad', price: -1 }),
    (err) => err instanceof mongoose.Error.ValidationError);
  await assert.rejects(Product.create({ sku: `${prefix}-1`, name: 'Again', price: 1 }), (err) => {
    assert.equal(err.code, 11000, String(err));
    assert.match(err.message, new RegExp(`main_db\\.${prefix}_products`), err.message);
    assert.doesNotMatch(err.message, /pos_db/, err.message);
    return true;
  });

  const line = (sku, qty) => ({ product: bySku[sku]._id, qty, price: bySku[sku].price });
  const orderLines = [
    [line(`${prefix}-1`, 2), line(`${prefix}-3`, 1)],
    [line(`${prefix}-4`, 3)],
    [line(`${prefix}-5`, 1), line(`${prefix}-1`, 1)],
  ];
  await Order.create(orderLines.map((items, n) => ({
    number: n + 1, items, total: items.reduce((sum, it) => sum + it.qty * it.price, 0),
  })));

  // Reads: populate across the store's own models, sort, count, distinct, aggregate.
  const inStock = await Product.find({ stock: { $gt: 0 } }).sort({ price: 1 })
    .populate('category').populate('brand').lean();
  assert.deepEqual(inStock.map((p) => p.sku), [1, 3, 4, 5].map((k) => `${prefix}-${k}`));
  assert.deepEqual(inStock.map((p) => p.category.name), ['Drinks', 'Snacks', 'Snacks', 'Drinks']);
  assert.deepEqual(inStock.map((p) => p.brand.country), ['NZ', 'NZ', 'AU', 'NZ']);
  assert.equal(await Product.countDocuments({ category: drinks._id }), 3);
  assert.deepEqual((await Brand.distinct('country')).sort(), ['AU', 'NZ']);
  const slug = await Category.findOne({ slug: 'snacks' }).lean();
  assert.equal(String(slug._id), String(snacks._id));

  const order2 = await Order.findOne({ number: 2 }).populate('items.product').lean();
  assert.equal(order2.items[0].product.sku, `${prefix}-4`);

  // Writes: pay two orders, sell stock, drop the product that is out of stock.
  const paid = await Order.updateMany({ number: { $in: [1, 3] } }, { $set: { status: 'paid' } });
  assert.equal(paid.modifiedCount, 2);
  const cola = await Product.findOneAndUpdate({ sku: `${prefix}-1` }, { $inc: { stock: -3 } },
    { returnDocument: 'after' }).lean();
  assert.equal(cola.stock, 7);
  const removed = await Product.deleteOne({ stock: 0 });
  assert.equal(removed.deletedCount, 1);

  const revenue = await Order.aggregate([
    { $match: { status: 'paid' } },
    { $group: { _id: '$status', total: { $sum: '$total' }, orders: { $sum: 1 } } },
  ]);
  const price = (k) => k + base;
  const expectedRevenue = (2 * price(2) + price(5)) + (price(13) + price(2));
  assert.deepEqual(revenue, [{ _id: 'paid', total: expectedRevenue, orders: 2 }]);

  await User.create({ email: `manager@${prefix}.example.com`, role: 'manager', storeId: saved.storeId });

  const counts = {
    products: await Product.countDocuments(),
    orders: await Order.countDocuments(),
    categories: await Category.countDocuments(),
    brands: await Brand.countDocuments(),
  };
  assert.deepEqual(counts, { products: 4, orders: 3, categories: 2, brands: 2 });
  return {
    prefix, storeId: saved.storeId, databaseId: saved.databaseId ?? null, counts,
    revenue: revenue[0].total,
  };
}

// -- main ----------------------------------------------------------------------------------

async function main(connections) {
  // connections.js: getMainConnection() / getMasterAdminConnection()
  const mainConnection = await mongoose.createConnection(uri, connectOptions).asPromise();
  connections.push(mainConnection);
  const masterAdminConnection = await mongoose.createConnection(masterAdminUri, connectOptions)
    .asPromise();
  connections.push(masterAdminConnection);
  assert.equal(mainConnection.name, 'main_db', 'MONGODB_URI names the main database');

  const Store = mainConnection.model('Store', storeSchema);
  const User = mainConnection.model('User', userSchema);
  await Promise.all([Store.init(), User.init()]);

  const stores = [];
  for (let i = 0; i < storeCount; i += 1) {
    stores.push(await openStore(mainConnection, Store, User, i));
  }

  // The registry as the platform's monitoring reads it.
  const byDatabase = await Store.aggregate([
    { $group: { _id: '$databaseId', count: { $sum: 1 } } }, { $sort: { _id: 1 } }]);
  assert.equal(byDatabase.reduce((n, g) => n + g.count, 0), storeCount);
  assert.equal(await User.countDocuments({ storeId: { $ne: null } }), storeCount);

  // modelFactory.getModel('MasterAdmin', 'masteradmin')
  const MasterAdmin = masterAdminConnection.model('MasterAdmin', masterAdminSchema);
  await MasterAdmin.init();
  await MasterAdmin.create([{ username: 'root', role: 'owner' }, { username: 'ops', role: 'support' }]);
  await assert.rejects(MasterAdmin.create({ username: 'root', role: 'support' }),
    (err) => err.code === 11000 && /masteradmin\.masteradmins/.test(err.message)
      && !/pos_db/.test(err.message));
  const masterAdmins = await MasterAdmin.countDocuments();
  // The same data through useDb() on the main connection.
  const viaUseDb = mainConnection.useDb('masteradmin', { useCache: true })
    .model('MasterAdmin', masterAdminSchema);
  assert.equal(await viaUseDb.countDocuments(), masterAdmins);

  console.log(JSON.stringify({
    ok: true,
    stores,
    byDatabase: byDatabase.map((g) => [g._id ?? null, g.count]),
    masterAdmins,
  }));
}

const connections = [];
try {
  await main(connections);
} catch (err) {
  console.error('pos_app.mjs failed:', err);
  process.exitCode = 1;
} finally {
  await Promise.allSettled(connections.map((c) => c.close()));
}
