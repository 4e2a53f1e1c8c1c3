// What the Node e2e clients start with: the target the Python side passes in the
// environment, and a Node driver client whose waits are bounded (a stuck proxy fails the
// script instead of hanging it).
//
// Env: MONGODB_URI (required: the proxy), E2E_DB and E2E_COLLECTION (each script has defaults).
import assert from 'node:assert/strict';
import { MongoClient } from 'mongodb';

export const uri = process.env.MONGODB_URI;
assert.ok(uri, 'MONGODB_URI must be set');

// E2E_DB and E2E_COLLECTION, or the script's defaults.
export function target(defaultDb, defaultCollection) {
  return {
    dbName: process.env.E2E_DB ?? defaultDb,
    collName: process.env.E2E_COLLECTION ?? defaultCollection,
  };
}

export const timeouts = { serverSelectionTimeoutMS: 10000, connectTimeoutMS: 10000, socketTimeoutMS: 30000 };

// A Node driver client for MONGODB_URI (connect() not called yet).
export function driverClient(appName, options = {}) {
  return new MongoClient(uri, { appName, ...timeouts, maxPoolSize: 5, ...options });
}
