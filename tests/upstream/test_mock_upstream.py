#!/usr/bin/python3
"""Self-test of mock_upstream.py: pymongo 3.11 and raw sockets against the mock upstream.

Run from this directory: /usr/bin/python3 -m unittest -v test_mock_upstream
"""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import bson
from bson import json_util
from bson.int64 import Int64
from bson.objectid import ObjectId
import pymongo
from pymongo import errors

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import mock_upstream  # noqa: E402
from mock_upstream import MockUpstream  # noqa: E402

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
OP_COMPRESSED = 2012


def make_client(up, **kwargs):
    kwargs.setdefault('serverSelectionTimeoutMS', 5000)
    kwargs.setdefault('socketTimeoutMS', 10000)
    return pymongo.MongoClient('mongodb://127.0.0.1:%d/?directConnection=true' % up.port,
                               **kwargs)


# ---- raw wire helpers ------------------------------------------------------------------------

class RawConn(object):
    """A bare TCP connection speaking OP_MSG / OP_QUERY by hand."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
        self.next_id = 100

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def op_msg(self, body, sequences=None, flags=0, checksum=False):
        payload = struct.pack('<I', flags | (1 if checksum else 0))
        payload += b'\x00' + bson.encode(body)
        for ident, docs in (sequences or {}).items():
            raw_docs = b''.join(bson.encode(d) for d in docs)
            section = ident.encode() + b'\x00' + raw_docs
            payload += b'\x01' + struct.pack('<i', 4 + len(section)) + section
        self.next_id += 1
        length = 16 + len(payload) + (4 if checksum else 0)
        frame = struct.pack('<iiii', length, self.next_id, 0, OP_MSG) + payload
        if checksum:
            frame += struct.pack('<I', mock_upstream.crc32c(frame))
        self.sock.sendall(frame)
        return self.next_id

    def op_query(self, ns, doc):
        payload = struct.pack('<i', 0) + ns.encode() + b'\x00' + struct.pack('<ii', 0, -1)
        payload += bson.encode(doc)
        self.next_id += 1
        self.sock.sendall(struct.pack('<iiii', 16 + len(payload), self.next_id, 0, OP_QUERY)
                          + payload)
        return self.next_id

    def recv_exact(self, n):
        buf = b''
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError('closed')
            buf += chunk
        return buf

    def read(self):
        """-> (request_id, response_to, opcode, flags, doc)"""
        header = self.recv_exact(16)
        length, request_id, response_to, opcode = struct.unpack('<iiii', header)
        payload = self.recv_exact(length - 16)
        if opcode == OP_MSG:
            flags, = struct.unpack_from('<I', payload, 0)
            assert payload[4] == 0
            return request_id, response_to, opcode, flags, bson.decode(payload[5:])
        if opcode == OP_REPLY:
            flags, _cursor, _start, n = struct.unpack_from('<iqii', payload, 0)
            docs = bson.decode_all(payload[20:])
            return request_id, response_to, opcode, flags, docs[0]
        raise AssertionError('unexpected opcode %d' % opcode)

    def command(self, body, **kw):
        rid = self.op_msg(body, **kw)
        reply = self.read()
        assert reply[1] == rid, (reply, rid)
        return reply[4]


# ---- in-process tests -------------------------------------------------------------------------

class InProcessTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = MockUpstream(name='selftest').start()
        cls.client = make_client(cls.up)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.up.stop()

    def setUp(self):
        self.up.clear_faults()
        self.client.drop_database('t')
        self.db = self.client.t
        self.up.clear_recorded()

    def records(self, command=None):
        return self.up.recorded(command=command)

    # -- handshake and server information

    def test_hello_and_ismaster_shapes(self):
        hello = self.client.admin.command('hello')
        self.assertIs(hello['isWritablePrimary'], True)
        self.assertNotIn('ismaster', hello)
        for key, value in (('helloOk', True), ('maxBsonObjectSize', 16777216),
                           ('maxMessageSizeBytes', 48000000), ('maxWriteBatchSize', 100000),
                           ('logicalSessionTimeoutMinutes', 30), ('minWireVersion', 0),
                           ('maxWireVersion', 21), ('readOnly', False), ('ok', 1.0)):
            self.assertEqual(hello[key], value, key)
        self.assertIn('localTime', hello)
        self.assertIsInstance(hello['connectionId'], int)
        for spelling in ('isMaster', 'ismaster', 'ISMASTER'):
            reply = self.client.admin.command(spelling)
            self.assertIs(reply['ismaster'], True)
            self.assertNotIn('isWritablePrimary', reply)

    def test_handshake_is_recorded_with_client_metadata(self):
        other = make_client(self.up, appname='probe')
        other.admin.command('ping')
        other.close()
        handshakes = [r for r in self.up.recorded()
                      if r['command'].lower() in ('ismaster', 'hello') and 'client' in r['body']]
        self.assertTrue(handshakes)
        first = handshakes[0]
        self.assertEqual(first['opcode'], 'OP_QUERY')
        self.assertEqual(first['db'], 'admin')
        self.assertEqual(first['body']['client']['driver']['name'], 'PyMongo')
        self.assertEqual(first['body']['client']['application']['name'], 'probe')

    def test_connection_ids_differ_per_connection(self):
        a, b = RawConn(self.up.port), RawConn(self.up.port)
        try:
            ida = a.command({'hello': 1, '$db': 'admin'})['connectionId']
            idb = b.command({'hello': 1, '$db': 'admin'})['connectionId']
            self.assertNotEqual(ida, idb)
            self.assertEqual(a.command({'hello': 1, '$db': 'admin'})['connectionId'], ida)
        finally:
            a.close()
            b.close()

    def test_client_metadata_only_in_first_hello(self):
        raw = RawConn(self.up.port)
        try:
            meta = {'driver': {'name': 'x', 'version': '1'}, 'os': {'type': 'Linux'}}
            self.assertEqual(raw.command({'hello': 1, 'client': meta, '$db': 'admin'})['ok'], 1)
            again = raw.command({'hello': 1, 'client': meta, '$db': 'admin'})
            self.assertEqual(again['ok'], 0)
            self.assertEqual(again['code'], 186)
            self.assertEqual(again['codeName'], 'ClientMetadataCannotBeMutated')
            self.assertEqual(raw.command({'hello': 1, '$db': 'admin'})['ok'], 1)
        finally:
            raw.close()

    def test_server_info_commands(self):
        admin = self.client.admin
        self.assertEqual(admin.command('ping'), {'ok': 1.0})
        info = admin.command('buildInfo')
        self.assertEqual(info['version'], '7.0.0')
        self.assertEqual(info['versionArray'][:3], [7, 0, 0])
        self.assertEqual(admin.command('buildinfo')['version'], '7.0.0')
        fcv = admin.command({'getParameter': 1, 'featureCompatibilityVersion': 1})
        self.assertEqual(fcv['featureCompatibilityVersion'], {'version': '7.0'})
        self.assertIn('parsed', admin.command('getCmdLineOpts'))
        self.assertIn('authInfo', admin.command('connectionStatus'))
        self.assertIn('system', admin.command('hostInfo'))
        self.assertEqual(admin.command({'getLog': 'startupWarnings'})['log'], [])
        self.assertEqual(admin.command('endSessions', [])['ok'], 1)
        self.assertEqual(admin.command('killAllSessions', [])['ok'], 1)
        self.assertIn('connections', admin.command('serverStatus'))

    def test_unknown_command(self):
        with self.assertRaises(errors.OperationFailure) as ctx:
            self.client.admin.command('atlasVersion')
        self.assertEqual(ctx.exception.code, 59)
        self.assertEqual(ctx.exception.details['codeName'], 'CommandNotFound')
        self.assertEqual(ctx.exception.details['errmsg'], "no such command: 'atlasVersion'")

    def test_op_query_command_refused_on_modern_wire(self):
        raw = RawConn(self.up.port)
        try:
            raw.op_query('admin.$cmd', {'isMaster': 1})
            _, _, opcode, _, doc = raw.read()
            self.assertEqual(opcode, OP_REPLY)
            self.assertTrue(doc['ismaster'])
            raw.op_query('t.$cmd', {'count': 'c'})
            _, _, opcode, _, doc = raw.read()
            self.assertEqual((opcode, doc['ok'], doc['code']), (OP_REPLY, 0, 352))
        finally:
            raw.close()

    # -- CRUD

    def test_crud(self):
        coll = self.db.items
        coll.insert_one({'_id': 1, 'name': 'a', 'qty': 5})
        coll.insert_many([{'_id': i, 'name': 'n%d' % i, 'qty': i} for i in range(2, 12)])
        self.assertEqual(coll.count_documents({}), 11)
        self.assertEqual(coll.count_documents({'qty': {'$gt': 5}}), 6)
        self.assertEqual(coll.estimated_document_count(), 11)
        docs = list(coll.find({'qty': {'$gte': 3}}, {'name': 1, '_id': 0})
                    .sort('qty', -1).skip(1).limit(3))
        self.assertEqual(docs, [{'name': 'n10'}, {'name': 'n9'}, {'name': 'n8'}])
        self.assertEqual(coll.find_one({'_id': 1}), {'_id': 1, 'name': 'a', 'qty': 5})

        res = coll.update_one({'_id': 1}, {'$set': {'qty': 50}})
        self.assertEqual((res.matched_count, res.modified_count), (1, 1))
        res = coll.update_many({'qty': {'$lt': 5}}, {'$inc': {'qty': 100}})
        self.assertEqual((res.matched_count, res.modified_count), (3, 3))
        res = coll.update_one({'_id': 99}, {'$set': {'qty': 1}}, upsert=True)
        self.assertEqual(res.upserted_id, 99)
        self.assertEqual(res.raw_result['n'], 1)
        self.assertEqual(res.raw_result['nModified'], 0)
        self.assertEqual(res.raw_result['upserted'], 99)
        res = coll.replace_one({'_id': 2}, {'name': 'replaced'})
        self.assertEqual(res.modified_count, 1)
        self.assertEqual(coll.find_one({'_id': 2}), {'_id': 2, 'name': 'replaced'})
        with self.assertRaises(errors.WriteError) as ctx:
            coll.replace_one({'_id': 2}, {'_id': 3, 'name': 'moved'})
        self.assertEqual(ctx.exception.code, 66)

        before = coll.find_one_and_update({'_id': 3}, {'$set': {'flag': True}})
        self.assertNotIn('flag', before)
        after = coll.find_one_and_update({'_id': 3}, {'$set': {'flag': 2}},
                                         return_document=pymongo.ReturnDocument.AFTER)
        self.assertEqual(after['flag'], 2)
        up = coll.find_one_and_update({'_id': 500}, {'$set': {'x': 1}}, upsert=True,
                                      return_document=pymongo.ReturnDocument.AFTER)
        self.assertEqual(up, {'_id': 500, 'x': 1})
        gone = coll.find_one_and_delete({'_id': 4})
        self.assertEqual(gone['_id'], 4)
        self.assertIsNone(coll.find_one({'_id': 4}))
        raw = self.db.command({'findAndModify': 'items', 'query': {'_id': 777},
                               'update': {'$set': {'a': 1}}})
        self.assertEqual(raw['lastErrorObject'], {'n': 0, 'updatedExisting': False})
        self.assertIsNone(raw['value'])

        self.assertEqual(sorted(coll.distinct('name', {'_id': {'$lt': 4}})), ['a', 'n3',
                                                                             'replaced'])
        self.assertEqual(coll.delete_one({'_id': 5}).deleted_count, 1)
        self.assertEqual(coll.delete_many({'qty': {'$gte': 100}}).deleted_count, 1)
        self.assertEqual(self.up.client().t.items.count_documents({}), 10)

    def test_insert_uses_document_sequence_and_is_recorded(self):
        self.db.seq.insert_many([{'_id': i} for i in range(3)])
        rec = self.records('insert')[0]
        self.assertEqual(rec['opcode'], 'OP_MSG')
        self.assertEqual(rec['db'], 't')
        self.assertEqual(rec['body']['insert'], 'seq')
        self.assertNotIn('documents', rec['body'])
        self.assertEqual(rec['sequences'], {'documents': [{'_id': 0}, {'_id': 1}, {'_id': 2}]})
        self.assertIn('lsid', rec['body'])

    def test_insert_documents_in_body_and_duplicate_field_rejected(self):
        raw = RawConn(self.up.port)
        try:
            reply = raw.command({'insert': 'body', 'documents': [{'_id': 1}, {'_id': 2}],
                                 '$db': 't'})
            self.assertEqual(reply, {'n': 2, 'ok': 1.0})
            reply = raw.command({'insert': 'body', 'documents': [{'_id': 3}], '$db': 't'},
                                sequences={'documents': [{'_id': 4}]})
            self.assertEqual(reply['ok'], 0)
        finally:
            raw.close()

    def test_update_and_delete_sequences(self):
        raw = RawConn(self.up.port)
        try:
            raw.command({'insert': 'u', '$db': 't'},
                        sequences={'documents': [{'_id': i, 'v': 0} for i in range(5)]})
            reply = raw.command({'update': 'u', '$db': 't'}, sequences={'updates': [
                {'q': {'_id': {'$lt': 3}}, 'u': {'$set': {'v': 1}}, 'multi': True},
                {'q': {'_id': 42}, 'u': {'$set': {'v': 2}}, 'upsert': True}]})
            self.assertEqual(reply['n'], 4)
            self.assertEqual(reply['nModified'], 3)
            self.assertEqual(reply['upserted'], [{'index': 1, '_id': 42}])
            reply = raw.command({'delete': 'u', '$db': 't'}, sequences={'deletes': [
                {'q': {'v': 1}, 'limit': 1}, {'q': {'v': 0}, 'limit': 0}]})
            self.assertEqual(reply, {'n': 3, 'ok': 1.0})
        finally:
            raw.close()

    # -- cursors

    def test_cursor_250_docs_batch_50(self):
        coll = self.db.big
        coll.insert_many([{'_id': i, 'pad': 'x' * 10} for i in range(250)])
        self.up.clear_recorded()
        got = [d['_id'] for d in coll.find().sort('_id', 1).batch_size(50)]
        self.assertEqual(got, list(range(250)))
        finds = self.records('find')
        more = self.records('getMore')
        self.assertEqual(len(finds), 1)
        self.assertEqual(finds[0]['body']['batchSize'], 50)
        self.assertEqual(len(more), 4)
        ids = {r['body']['getMore'] for r in more}
        self.assertEqual(len(ids), 1)
        cursor_id = ids.pop()
        self.assertIsInstance(cursor_id, Int64)
        self.assertNotEqual(cursor_id, 0)
        self.assertEqual(more[0]['body']['collection'], 'big')
        self.assertEqual(self.up.stats()['cursorsOpen'], 0)

    def test_cursor_reply_shapes(self):
        self.db.shape.insert_many([{'_id': i} for i in range(7)])
        first = self.db.command({'find': 'shape', 'batchSize': 3})
        cursor = first['cursor']
        self.assertEqual(list(cursor), ['firstBatch', 'id', 'ns'])
        self.assertEqual(cursor['ns'], 't.shape')
        self.assertEqual(len(cursor['firstBatch']), 3)
        self.assertIsInstance(cursor['id'], Int64)
        cid = cursor['id']
        nxt = self.db.command({'getMore': cid, 'collection': 'shape', 'batchSize': 3})
        self.assertEqual(list(nxt['cursor']), ['nextBatch', 'id', 'ns'])
        self.assertEqual(nxt['cursor']['id'], cid)
        last = self.db.command({'getMore': cid, 'collection': 'shape'})
        self.assertEqual(len(last['cursor']['nextBatch']), 1)
        self.assertEqual(last['cursor']['id'], 0)
        with self.assertRaises(errors.OperationFailure) as ctx:
            self.db.command({'getMore': cid, 'collection': 'shape'})
        self.assertEqual(ctx.exception.code, 43)
        # ids are unique per server
        a = self.db.command({'find': 'shape', 'batchSize': 1})['cursor']['id']
        b = self.db.command({'find': 'shape', 'batchSize': 1})['cursor']['id']
        self.assertNotEqual(a, b)
        # limit + singleBatch close the cursor
        self.assertEqual(self.db.command({'find': 'shape', 'limit': 2})['cursor']['id'], 0)
        single = self.db.command({'find': 'shape', 'batchSize': 2, 'singleBatch': True})
        self.assertEqual((len(single['cursor']['firstBatch']), single['cursor']['id']), (2, 0))

    def test_get_more_validates_namespace_and_type(self):
        self.db.ns1.insert_many([{'_id': i} for i in range(5)])
        cid = self.db.command({'find': 'ns1', 'batchSize': 1})['cursor']['id']
        with self.assertRaises(errors.OperationFailure) as ctx:
            self.db.command({'getMore': cid, 'collection': 'other'})
        self.assertEqual(ctx.exception.code, 13)
        self.assertIn("cursor belongs to a different namespace t.ns1",
                      ctx.exception.details['errmsg'])
        with self.assertRaises(errors.OperationFailure) as ctx:
            self.client.other.command({'getMore': cid, 'collection': 'ns1'})
        self.assertEqual(ctx.exception.code, 13)
        with self.assertRaises(errors.OperationFailure) as ctx:
            self.db.command({'getMore': 5, 'collection': 'ns1'})
        self.assertEqual(ctx.exception.code, 14)
        # still usable with the right namespace
        ok = self.db.command({'getMore': cid, 'collection': 'ns1'})
        self.assertEqual(len(ok['cursor']['nextBatch']), 4)

    def test_kill_cursors(self):
        self.db.kc.insert_many([{'_id': i} for i in range(250)])
        cursor = self.db.kc.find().batch_size(10)
        next(cursor)
        self.assertEqual(self.up.stats()['cursorsOpen'], 1)
        cursor.close()
        deadline = time.time() + 5
        while not self.records('killCursors') and time.time() < deadline:
            time.sleep(0.05)
        kill = self.records('killCursors')
        self.assertEqual(len(kill), 1)
        self.assertEqual(kill[0]['body']['killCursors'], 'kc')
        self.assertEqual(self.up.stats()['cursorsOpen'], 0)
        cid = self.db.command({'find': 'kc', 'batchSize': 1})['cursor']['id']
        reply = self.db.command({'killCursors': 'kc', 'cursors': [cid, Int64(12345)]})
        self.assertEqual(reply['cursorsKilled'], [cid])
        self.assertEqual(reply['cursorsNotFound'], [12345])
        self.assertEqual(reply['cursorsAlive'], [])
        self.assertEqual(reply['cursorsUnknown'], [])

    def test_exhaust_get_more_streams_with_more_to_come(self):
        self.db.ex.insert_many([{'_id': i} for i in range(7)])
        raw = RawConn(self.up.port)
        try:
            first = raw.command({'find': 'ex', 'batchSize': 2, '$db': 't'})
            cid = first['cursor']['id']
            rid = raw.op_msg({'getMore': cid, 'collection': 'ex', 'batchSize': 2, '$db': 't'},
                             flags=1 << 16)
            got = [d['_id'] for d in first['cursor']['firstBatch']]
            expect_to = rid
            flags_seen = []
            while True:
                reply_id, response_to, _op, flags, doc = raw.read()
                self.assertEqual(response_to, expect_to)
                expect_to = reply_id
                flags_seen.append(flags & 2)
                got += [d['_id'] for d in doc['cursor']['nextBatch']]
                if not flags & 2:
                    self.assertEqual(doc['cursor']['id'], 0)
                    break
            self.assertEqual(got, list(range(7)))
            self.assertEqual(flags_seen, [2, 2, 0])
            self.assertEqual(raw.command({'ping': 1, '$db': 'admin'})['ok'], 1)
        finally:
            raw.close()

    # -- aggregate

    def test_aggregate(self):
        orders = self.db.orders
        orders.insert_many([{'_id': i, 'cust': i % 3, 'amount': i * 10} for i in range(1, 10)])
        self.db.customers.insert_many([{'_id': c, 'name': 'c%d' % c} for c in range(3)])
        groups = list(orders.aggregate([
            {'$match': {'amount': {'$gte': 20}}},
            {'$group': {'_id': '$cust', 'total': {'$sum': '$amount'}, 'n': {'$sum': 1}}},
            {'$sort': {'_id': 1}},
        ]))
        self.assertEqual(groups, [{'_id': 0, 'total': 180, 'n': 3},
                                  {'_id': 1, 'total': 110, 'n': 2},
                                  {'_id': 2, 'total': 150, 'n': 3}])
        self.assertEqual(list(groups[0]), ['_id', 'total', 'n'])
        page = list(orders.aggregate([{'$sort': {'amount': -1}}, {'$skip': 1}, {'$limit': 2},
                                      {'$project': {'amount': 1, '_id': 0}}]))
        self.assertEqual(page, [{'amount': 80}, {'amount': 70}])
        self.assertEqual(list(orders.aggregate([{'$count': 'n'}])), [{'n': 9}])
        joined = list(orders.aggregate([{'$match': {'_id': 4}},
                                        {'$lookup': {'from': 'customers', 'localField': 'cust',
                                                     'foreignField': '_id', 'as': 'c'}}]))
        self.assertEqual(joined[0]['c'], [{'_id': 1, 'name': 'c1'}])
        unset = list(orders.aggregate([{'$match': {'_id': 1}}, {'$unset': 'cust'}]))
        self.assertEqual(unset, [{'_id': 1, 'amount': 10}])
        union = list(self.db.customers.aggregate([{'$unionWith': 'customers'}]))
        self.assertEqual(len(union), 6)
        orders.aggregate([{'$match': {'cust': 0}}, {'$out': 'zero'}])
        self.assertEqual(self.db.zero.count_documents({}), 3)
        docs = self.db.command({'aggregate': 1, 'pipeline': [
            {'$documents': [{'a': 1}, {'a': 2}]}, {'$match': {'a': 2}}], 'cursor': {}})
        self.assertEqual(docs['cursor']['firstBatch'], [{'a': 2}])
        self.assertEqual(docs['cursor']['ns'], 't.$cmd.aggregate')

    def test_aggregate_cursor_batches_and_errors(self):
        self.db.agg.insert_many([{'_id': i} for i in range(30)])
        reply = self.db.command({'aggregate': 'agg', 'pipeline': [], 'cursor': {'batchSize': 5}})
        self.assertEqual(len(reply['cursor']['firstBatch']), 5)
        self.assertEqual(reply['cursor']['ns'], 't.agg')
        self.assertNotEqual(reply['cursor']['id'], 0)
        self.assertEqual(len(list(self.db.agg.aggregate([], batchSize=4))), 30)
        with self.assertRaises(errors.OperationFailure) as ctx:
            self.db.command({'aggregate': 'agg', 'pipeline': []})
        self.assertEqual(ctx.exception.code, 9)
        with self.assertRaises(errors.OperationFailure) as ctx:
            list(self.db.agg.aggregate([{'$bogus': {}}]))
        self.assertEqual(ctx.exception.code, 40324)
        with self.assertRaises(errors.OperationFailure) as ctx:
            list(self.db.agg.aggregate([{'$changeStream': {}}]))
        self.assertEqual(ctx.exception.code, 40573)
        with self.assertRaises(errors.OperationFailure) as ctx:
            list(self.db.agg.aggregate([{'$bucketAuto': {'groupBy': '$_id', 'buckets': 2}}]))
        self.assertEqual(ctx.exception.code, 115)

    # -- write errors

    def test_duplicate_key_error_shape(self):
        coll = self.db.dups
        coll.insert_one({'_id': 1})
        with self.assertRaises(errors.BulkWriteError) as ctx:
            coll.insert_many([{'_id': 2}, {'_id': 1}, {'_id': 3}])
        details = ctx.exception.details
        self.assertEqual(details['nInserted'], 1)
        err = details['writeErrors'][0]
        self.assertEqual(err['index'], 1)
        self.assertEqual(err['code'], 11000)
        self.assertEqual(err['errmsg'], 'E11000 duplicate key error collection: t.dups index: '
                                        '_id_ dup key: { _id: 1 }')
        self.assertEqual(err['keyPattern'], {'_id': 1})
        self.assertEqual(err['keyValue'], {'_id': 1})
        self.assertIsNone(coll.find_one({'_id': 3}))
        # unordered continues
        with self.assertRaises(errors.BulkWriteError) as ctx:
            coll.insert_many([{'_id': 1}, {'_id': 4}], ordered=False)
        self.assertEqual(ctx.exception.details['nInserted'], 1)
        # raw reply shape
        reply = self.db.command({'insert': 'dups', 'documents': [{'_id': 1}]})
        self.assertEqual(reply['n'], 0)
        self.assertEqual(reply['ok'], 1.0)
        self.assertEqual(reply['writeErrors'][0]['code'], 11000)

    def test_unique_index_duplicate_messages(self):
        coll = self.db.people
        coll.create_index('email', unique=True)
        coll.insert_one({'_id': 1, 'email': 'a@x'})
        with self.assertRaises(errors.DuplicateKeyError) as ctx:
            coll.insert_one({'_id': 2, 'email': 'a@x'})
        self.assertEqual(ctx.exception.details['errmsg'],
                         'E11000 duplicate key error collection: t.people index: email_1 dup '
                         'key: { email: "a@x" }')
        coll.insert_one({'_id': 3, 'email': 'b@x'})
        with self.assertRaises(errors.DuplicateKeyError) as ctx:
            coll.update_one({'_id': 3}, {'$set': {'email': 'a@x'}})
        self.assertIn('index: email_1 dup key: { email: "a@x" }',
                      ctx.exception.details['errmsg'])
        self.assertEqual(coll.find_one({'_id': 3})['email'], 'b@x')
        oid = ObjectId()
        coll.insert_one({'_id': oid, 'email': 'c@x'})
        with self.assertRaises(errors.DuplicateKeyError) as ctx:
            coll.insert_one({'_id': oid})
        self.assertIn("dup key: { _id: ObjectId('%s') }" % oid, ctx.exception.details['errmsg'])
        with self.assertRaises(errors.DuplicateKeyError) as ctx:
            coll.find_one_and_update({'_id': 1}, {'$set': {'email': 'b@x'}})
        self.assertEqual(ctx.exception.code, 11000)

    # -- catalog

    def test_create_drop_list_collections(self):
        self.db.create_collection('alpha')
        with self.assertRaises(errors.OperationFailure) as ctx:
            self.db.command('create', 'alpha')
        self.assertEqual(ctx.exception.code, 48)
        self.db.command('create', 'capped', capped=True, size=4096)
        self.db.beta.insert_one({'_id': 1})
        names = self.db.list_collection_names()
        self.assertEqual(sorted(names), ['alpha', 'beta', 'capped'])
        reply = self.db.command('listCollections', filter={'name': 'capped'})
        entry, = reply['cursor']['firstBatch']
        self.assertEqual(reply['cursor']['ns'], 't.$cmd.listCollections')
        self.assertEqual(entry['type'], 'collection')
        self.assertEqual(entry['options'], {'capped': True, 'size': 4096})
        self.assertEqual(entry['info']['readOnly'], False)
        self.assertEqual(entry['idIndex'], {'v': 2, 'key': {'_id': 1}, 'name': '_id_'})
        entry = self.db.command('listCollections', filter={'name': 'alpha'})['cursor'][
            'firstBatch'][0]
        self.assertEqual(entry['options'], {})
        name_only = self.db.command('listCollections', nameOnly=True)['cursor']['firstBatch']
        self.assertEqual(name_only[0], {'name': 'alpha', 'type': 'collection'})
        regex = self.db.list_collection_names(filter={'name': {'$regex': '^b'}})
        self.assertEqual(regex, ['beta'])
        # empty collections stay listed after their documents are deleted
        self.db.beta.delete_many({})
        self.assertIn('beta', self.db.list_collection_names())
        reply = self.db.command('drop', 'alpha')
        self.assertEqual(reply['ns'], 't.alpha')
        with self.assertRaises(errors.OperationFailure) as ctx:
            self.db.command('drop', 'alpha')
        self.assertEqual(ctx.exception.code, 26)
        self.assertEqual(ctx.exception.details['codeName'], 'NamespaceNotFound')
        dbs = self.client.list_database_names()
        for name in ('admin', 'config', 'local', 't'):
            self.assertIn(name, dbs)
        full = self.client.admin.command('listDatabases')
        self.assertIn('totalSize', full)
        self.assertTrue(all('sizeOnDisk' in d for d in full['databases']))
        self.assertEqual(self.client.admin.command('listDatabases', nameOnly=True,
                                                   filter={'name': 't'})['databases'],
                         [{'name': 't'}])
        self.client.drop_database('t')
        self.assertNotIn('t', self.client.list_database_names())

    def test_indexes(self):
        coll = self.db.idx
        reply = self.db.command('createIndexes', 'idx', indexes=[
            {'key': {'a': 1}, 'name': 'a_1'},
            {'key': {'b': -1, 'c': 1}, 'name': 'bc', 'unique': True}])
        self.assertEqual((reply['numIndexesBefore'], reply['numIndexesAfter']), (1, 3))
        self.assertTrue(reply['createdCollectionAutomatically'])
        again = self.db.command('createIndexes', 'idx', indexes=[{'key': {'a': 1}, 'name': 'a_1'}])
        self.assertEqual(again['note'], 'all indexes already exist')
        with self.assertRaises(errors.OperationFailure) as ctx:
            self.db.command('createIndexes', 'idx', indexes=[{'key': {'z': 1}, 'name': 'a_1'}])
        self.assertEqual(ctx.exception.code, 86)
        info = coll.index_information()
        self.assertEqual(sorted(info), ['_id_', 'a_1', 'bc'])
        self.assertEqual(info['bc']['key'], [('b', -1), ('c', 1)])
        self.assertTrue(info['bc']['unique'])
        listed = self.db.command('listIndexes', 'idx')
        self.assertEqual(listed['cursor']['ns'], 't.$cmd.listIndexes.idx')
        coll.drop_index('a_1')
        self.assertEqual(sorted(coll.index_information()), ['_id_', 'bc'])
        with self.assertRaises(errors.OperationFailure) as ctx:
            coll.drop_index('nope')
        self.assertEqual(ctx.exception.code, 27)
        with self.assertRaises(errors.OperationFailure) as ctx:
            self.db.command('listIndexes', 'missing')
        self.assertEqual(ctx.exception.code, 26)
        coll.drop_indexes()
        self.assertEqual(list(coll.index_information()), ['_id_'])

    def test_views(self):
        self.db.src.insert_many([{'_id': i, 'k': i % 2} for i in range(6)])
        self.db.command('create', 'odd', viewOn='src', pipeline=[{'$match': {'k': 1}}])
        self.assertEqual([d['_id'] for d in self.db.odd.find().sort('_id', -1)], [5, 3, 1])
        self.assertEqual(self.db.odd.count_documents({'_id': {'$gt': 1}}), 2)
        entry = self.db.command('listCollections', filter={'name': 'odd'})['cursor'][
            'firstBatch'][0]
        self.assertEqual(entry['type'], 'view')
        self.assertEqual(entry['options'], {'viewOn': 'src', 'pipeline': [{'$match': {'k': 1}}]})
        with self.assertRaises(errors.OperationFailure) as ctx:
            self.db.odd.insert_one({'x': 1})
        self.assertEqual(ctx.exception.code, 166)

    def test_stats_and_misc_commands(self):
        self.db.st.insert_many([{'_id': i} for i in range(4)])
        stats = self.db.command('dbStats')
        self.assertEqual((stats['db'], stats['collections'], stats['objects']), ('t', 1, 4))
        cstats = self.db.command('collStats', 'st')
        self.assertEqual((cstats['ns'], cstats['count']), ('t.st', 4))
        self.client.admin.command('renameCollection', 't.st', to='t.st2')
        self.assertEqual(self.db.st2.count_documents({}), 4)
        self.client.admin.command('renameCollection', 't.st2', to='t2.moved')
        self.assertEqual(self.client.t2.moved.count_documents({}), 4)
        self.assertNotIn('st2', self.db.list_collection_names())
        self.client.drop_database('t2')
        explain = self.db.command('explain', {'find': 'st', 'filter': {}})
        self.assertEqual(explain['queryPlanner']['namespace'], 't.st')

    # -- faults

    def test_fault_error(self):
        self.up.add_fault('find', 'error', code=262, errmsg='shutting down',
                          error_labels=['RetryableWriteError'], times=1)
        with self.assertRaises(errors.OperationFailure) as ctx:
            self.db.command('find', 'x')
        self.assertEqual(ctx.exception.code, 262)
        self.assertEqual(ctx.exception.details['codeName'], 'ExceededTimeLimit')
        self.assertEqual(ctx.exception.details['errmsg'], 'shutting down')
        self.assertTrue(ctx.exception.has_error_label('RetryableWriteError'))
        self.assertEqual(self.db.command('find', 'x')['ok'], 1)  # times=1 consumed
        self.assertEqual(len(self.records('find')), 2)  # faulted commands are recorded too

    def test_fault_times_and_wildcard(self):
        self.up.add_fault('*', 'error', code=2, times=2)
        self.client.admin.command('hello')  # '*' never matches the handshake
        for _ in range(2):
            with self.assertRaises(errors.OperationFailure):
                self.db.command('count', 'x')
        self.assertEqual(self.db.command('count', 'x')['n'], 0)
        self.up.add_fault(['count', 'distinct'], 'error', code=13, times=-1)
        for _ in range(3):
            with self.assertRaises(errors.OperationFailure) as ctx:
                self.db.command('distinct', 'x', key='a')
            self.assertEqual(ctx.exception.code, 13)
        self.assertEqual(len(self.up.faults()), 1)
        self.up.clear_faults()
        self.assertEqual(self.db.command('distinct', 'x', key='a')['values'], [])
        self.up.add_fault('find', 'error', code=2, db='other')
        self.assertEqual(self.db.command('find', 'x')['ok'], 1)
        self.up.add_fault('find', 'error', code=2, collection='y')
        self.assertEqual(self.db.command('find', 'x')['ok'], 1)
        with self.assertRaises(errors.OperationFailure):
            self.db.command('find', 'y')

    def test_fault_delay(self):
        self.up.add_fault('ping', 'delay', delay_ms=300)
        start = time.time()
        self.assertEqual(self.client.admin.command('ping')['ok'], 1)
        self.assertGreaterEqual(time.time() - start, 0.28)
        start = time.time()
        self.client.admin.command('ping')
        self.assertLess(time.time() - start, 0.25)

    def test_fault_close(self):
        self.up.add_fault('insert', 'close')
        client = make_client(self.up, retryWrites=False)
        try:
            with self.assertRaises(errors.AutoReconnect):
                client.t.closed.insert_one({'_id': 1})
            client.t.closed.insert_one({'_id': 2})
            self.assertEqual([d['_id'] for d in client.t.closed.find()], [2])
        finally:
            client.close()

    def test_fault_close_raw_connection(self):
        self.up.add_fault('ping', 'close')
        raw = RawConn(self.up.port)
        try:
            raw.op_msg({'ping': 1, '$db': 'admin'})
            with self.assertRaises((ConnectionError, OSError)):
                raw.read()
        finally:
            raw.close()

    def test_fault_hang_blocks_one_connection_only(self):
        self.up.add_fault('find', 'hang')
        slow = make_client(self.up)
        result = {}

        def run():
            result['doc'] = slow.t.command('find', 'h')

        thread = threading.Thread(target=run, daemon=True)
        try:
            thread.start()
            time.sleep(0.4)
            self.assertTrue(thread.is_alive())
            self.assertEqual(self.client.admin.command('ping')['ok'], 1)  # others unaffected
            self.assertEqual(self.db.command('count', 'h')['ok'], 1)
            self.up.clear_faults()
            thread.join(5)
            self.assertFalse(thread.is_alive())
            self.assertEqual(result['doc']['ok'], 1)
        finally:
            slow.close()

    def test_fault_hang_with_client_timeout(self):
        self.up.add_fault('find', 'hang')
        client = make_client(self.up, socketTimeoutMS=300)
        try:
            with self.assertRaises(errors.NetworkTimeout):
                client.t.command('find', 'h')
        finally:
            self.up.clear_faults()
            client.close()

    def test_fault_reply(self):
        self.up.add_fault('insert', 'reply', reply={'ok': 0.0, 'code': 10107,
                                                    'codeName': 'NotWritablePrimary',
                                                    'errmsg': 'not primary'})
        # pymongo 3.11 raises NotMasterError (an AutoReconnect) for this code
        with self.assertRaises(errors.NotMasterError) as ctx:
            self.db.command('insert', 'r', documents=[{'_id': 1}])
        self.assertEqual(ctx.exception.details['code'], 10107)
        self.assertIsNone(self.up.client().t.r.find_one())

    def test_fault_hello_by_name(self):
        self.up.add_fault('hello', 'error', code=91, times=1)
        raw = RawConn(self.up.port)
        try:
            self.assertEqual(raw.command({'isMaster': 1, '$db': 'admin'})['code'], 91)
            self.assertEqual(raw.command({'isMaster': 1, '$db': 'admin'})['ok'], 1)
        finally:
            raw.close()

    # -- recording, control commands in-process

    def test_recording_content_and_order(self):
        self.db.rec.insert_one({'_id': 1})
        self.db.rec.find_one({'_id': 1})
        recs = [r for r in self.up.recorded() if r['db'] == 't']
        self.assertEqual([r['command'] for r in recs], ['insert', 'find'])
        self.assertLess(recs[0]['seq'], recs[1]['seq'])
        for rec in recs:
            self.assertEqual(set(rec), {'seq', 'connection_id', 'opcode', 'db', 'command',
                                        'body', 'sequences', 'flags', 'request_id',
                                        'compressor'})
            self.assertEqual(rec['opcode'], 'OP_MSG')
            self.assertEqual(rec['body']['$db'], 't')
        self.assertEqual(recs[1]['body']['filter'], {'_id': 1})
        self.assertEqual(recs[1]['sequences'], {})
        # control commands are not recorded
        self.client.admin.command('mockStats')
        self.client.admin.command('mockRecorded')
        self.assertFalse([r for r in self.up.recorded() if r['command'].startswith('mock')])
        since = self.up.recorded()[-1]['seq']
        self.db.command('ping')
        self.assertEqual([r['command'] for r in self.up.recorded(since=since)], ['ping'])
        self.up.clear_recorded()
        self.assertEqual(self.up.recorded(), [])

    def test_more_to_come_unacknowledged_write(self):
        coll = self.db.get_collection('w0', write_concern=pymongo.WriteConcern(w=0))
        coll.insert_one({'_id': 1})  # pymongo 3.11 sets moreToCome for single w:0 writes
        coll.insert_one({'_id': 2})
        deadline = time.time() + 5
        while self.up.client().t.w0.count_documents({}) < 2 and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.db.w0.count_documents({}), 2)
        recs = self.records('insert')
        self.assertEqual(len(recs), 2)
        self.assertTrue(all(r['flags'] & 2 for r in recs))

    def test_more_to_come_raw_gets_no_reply(self):
        raw = RawConn(self.up.port)
        try:
            raw.op_msg({'insert': 'mtc', 'documents': [{'_id': 1}], '$db': 't'}, flags=2)
            raw.op_msg({'insert': 'mtc', 'documents': [{'_id': 1}], '$db': 't'}, flags=2)  # dup
            rid = raw.op_msg({'count': 'mtc', '$db': 't'})
            _, response_to, _, _, doc = raw.read()
            self.assertEqual(response_to, rid)  # the first frame we get answers the count
            self.assertEqual(doc['n'], 1)
        finally:
            raw.close()

    def test_checksum_accepted_and_bad_checksum_closes(self):
        raw = RawConn(self.up.port)
        try:
            self.assertEqual(raw.command({'ping': 1, '$db': 'admin'}, checksum=True)['ok'], 1)
            payload = struct.pack('<I', 1) + b'\x00' + bson.encode({'ping': 1, '$db': 'admin'})
            frame = struct.pack('<iiii', 16 + len(payload) + 4, 9, 0, OP_MSG) + payload
            raw.send_raw(frame + b'\x00\x00\x00\x00')
            with self.assertRaises((ConnectionError, OSError)):
                raw.read()
        finally:
            raw.close()

    def test_garbage_frame_closes_only_that_connection(self):
        good = RawConn(self.up.port)
        try:
            self.assertEqual(good.command({'ping': 1, '$db': 'admin'})['ok'], 1)
            for garbage in (b'\xff' * 64,
                            struct.pack('<iiii', 40, 1, 0, OP_MSG) + b'\x00' * 24,
                            struct.pack('<iiii', 26, 1, 0, 9999) + b'0123456789',
                            struct.pack('<iiii', 8, 1, 0, OP_MSG)):
                bad = RawConn(self.up.port)
                try:
                    bad.send_raw(garbage)
                    with self.assertRaises((ConnectionError, OSError)):
                        bad.read()
                finally:
                    bad.close()
            self.assertEqual(good.command({'ping': 1, '$db': 'admin'})['ok'], 1)
            self.assertEqual(self.client.admin.command('ping')['ok'], 1)
            self.assertGreaterEqual(self.up.stats()['protocolErrors'], 4)
        finally:
            good.close()

    def test_zlib_compression(self):
        client = make_client(self.up, compressors='zlib')
        try:
            client.t.z.insert_many([{'_id': i, 's': 'abc' * 50} for i in range(200)])
            self.assertEqual(len(list(client.t.z.find().batch_size(40))), 200)
        finally:
            client.close()
        recs = [r for r in self.records() if r['db'] == 't']
        self.assertTrue(recs)
        self.assertTrue(all(r['compressor'] == 'zlib' for r in recs), recs[0])

    def test_stats(self):
        before = self.up.stats()
        c = make_client(self.up)
        c.admin.command('ping')
        mid = self.up.stats()
        self.assertGreater(mid['connectionsOpened'], before['connectionsOpened'])
        self.assertGreater(mid['connectionsCurrent'], 0)
        self.assertGreater(mid['commands'], before['commands'])
        c.close()
        via_cmd = self.client.admin.command('mockStats')
        for key in ('connectionsOpened', 'connectionsCurrent', 'commands'):
            self.assertIn(key, via_cmd)


class SessionsTest(unittest.TestCase):
    """Minimal server-side sessions: retryable writes, transactions, signed cluster time."""

    def setUp(self):
        self.up = MockUpstream(name='sessions', cluster_time_key=7).start()
        self.raw = RawConn(self.up.port)
        self.lsid = {'id': bson.Binary(os.urandom(16), 4)}

    def tearDown(self):
        self.raw.close()
        self.up.stop()

    def count(self):
        return self.up.client().t.c.count_documents({})

    def test_retryable_write_runs_once(self):
        insert = {'insert': 'c', 'documents': [{'_id': 1}], 'lsid': self.lsid,
                  'txnNumber': Int64(1), '$db': 't'}
        self.assertEqual(self.raw.command(insert)['n'], 1)
        self.assertEqual(self.raw.command(insert)['n'], 1)  # the retry: same reply, no error
        self.assertEqual(self.count(), 1)

    def test_close_after_runs_the_command_then_drops_the_reply(self):
        self.up.add_fault('insert', 'close_after')
        self.raw.op_msg({'insert': 'c', 'documents': [{'_id': 1}], '$db': 't'})
        with self.assertRaises((ConnectionError, OSError)):
            self.raw.read()
        self.assertEqual(self.count(), 1)

    def txn(self, body, number, start=False):
        body = dict(body, lsid=self.lsid, txnNumber=Int64(number), autocommit=False)
        if start:
            body['startTransaction'] = True
        return self.raw.command(body)

    def test_transaction_commit_and_abort(self):
        self.txn({'insert': 'c', 'documents': [{'_id': 1}], '$db': 't'}, 1, start=True)
        self.txn({'insert': 'c', 'documents': [{'_id': 2}], '$db': 't'}, 1)
        self.assertEqual(self.count(), 0)  # buffered until commit
        self.assertEqual(self.txn({'commitTransaction': 1, '$db': 'admin'}, 1)['ok'], 1.0)
        self.assertEqual(self.count(), 2)
        self.txn({'insert': 'c', 'documents': [{'_id': 3}], '$db': 't'}, 2, start=True)
        self.assertEqual(self.txn({'abortTransaction': 1, '$db': 'admin'}, 2)['ok'], 1.0)
        self.assertEqual(self.count(), 2)
        reply = self.txn({'abortTransaction': 1, '$db': 'admin'}, 2)
        self.assertEqual(reply['codeName'], 'NoSuchTransaction')

    def test_cluster_time_signed_and_checked(self):
        reply = self.raw.command({'ping': 1, '$db': 'admin'})
        self.assertEqual(reply['$clusterTime']['signature']['keyId'], 7)
        self.assertGreaterEqual(reply['operationTime'].inc, 7000000)
        ok = self.raw.command({'ping': 1, '$db': 'admin', '$clusterTime': reply['$clusterTime']})
        self.assertEqual(ok['ok'], 1.0)
        foreign = dict(reply['$clusterTime'], signature={'hash': bson.Binary(b'x' * 20),
                                                         'keyId': Int64(8)})
        refused = self.raw.command({'ping': 1, '$db': 'admin', '$clusterTime': foreign})
        self.assertEqual(refused['codeName'], 'KeyNotFound')


class ProtocolVariantsTest(unittest.TestCase):
    def test_legacy_wire_version_accepts_op_query_commands(self):
        with MockUpstream(name='old', max_wire_version=9) as up:
            self.assertEqual(make_client(up).admin.command('buildInfo')['version'], '4.4.0')
            raw = RawConn(up.port)
            try:
                raw.op_query('t.$cmd', {'insert': 'q', 'documents': [{'_id': 1}]})
                _, _, opcode, _, doc = raw.read()
                self.assertEqual((opcode, doc['n']), (OP_REPLY, 1))
            finally:
                raw.close()

    def test_instances_side_by_side(self):
        with MockUpstream(name='a') as a, MockUpstream(name='b') as b:
            self.assertNotEqual(a.port, b.port)
            self.assertEqual(a.uri, 'mongodb://127.0.0.1:%d' % a.port)
            make_client(a).t.c.insert_one({'_id': 'only-a'})
            self.assertEqual(make_client(b).t.c.count_documents({}), 0)
            self.assertEqual(a.client().t.c.count_documents({}), 1)

    def test_scram_authentication(self):
        with MockUpstream(name='auth', users={'alice': 's3cret'}) as up:
            for mech in ('SCRAM-SHA-256', 'SCRAM-SHA-1', None):
                kwargs = {'username': 'alice', 'password': 's3cret'}
                if mech:
                    kwargs['authMechanism'] = mech
                client = make_client(up, **kwargs)
                client.t.c.insert_one({'mech': mech})
                self.assertEqual(client.admin.command('connectionStatus')['authInfo'][
                    'authenticatedUsers'], [{'user': 'alice', 'db': 'admin'}])
                client.close()
            bad = make_client(up, username='alice', password='wrong')
            with self.assertRaises(errors.OperationFailure) as ctx:
                bad.t.c.find_one()
            self.assertEqual(ctx.exception.code, 18)
            anon = make_client(up)
            with self.assertRaises(errors.OperationFailure) as ctx:
                anon.t.c.find_one()
            self.assertEqual(ctx.exception.code, 13)
            self.assertEqual(anon.admin.command('ping')['ok'], 1)

    def test_tls(self):
        tmp = tempfile.mkdtemp()
        pem = os.path.join(tmp, 'server.pem')
        key, crt = os.path.join(tmp, 'k.pem'), os.path.join(tmp, 'c.pem')
        try:
            subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
                            '-subj', '/CN=localhost', '-days', '2', '-keyout', key, '-out', crt,
                            '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
                           check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            self.skipTest('openssl not available')
        with open(pem, 'w') as out:
            for part in (crt, key):
                with open(part) as fh:
                    out.write(fh.read())
        with MockUpstream(name='tls', tls_cert_key_file=pem) as up:
            client = make_client(up, tls=True, tlsCAFile=crt)
            self.assertEqual(client.admin.command('ping')['ok'], 1)
            client.close()


class SubprocessTest(unittest.TestCase):
    """The CLI: stdout line, port file, record file, control commands, SIGTERM exit 0."""

    def test_cli_and_control_commands(self):
        tmp = tempfile.mkdtemp()
        port_file = os.path.join(tmp, 'port')
        record_file = os.path.join(tmp, 'records.jsonl')
        proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, 'mock_upstream.py'), '--port', '0',
             '--port-file', port_file, '--name', 'cli', '--record-file', record_file,
             '--max-wire-version', '17'],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline().strip()
            with open(port_file) as fh:
                port = int(fh.read())
            self.assertEqual(line, 'mock-upstream cli listening on 127.0.0.1:%d' % port)
            client = pymongo.MongoClient('mongodb://127.0.0.1:%d/?directConnection=true' % port,
                                         serverSelectionTimeoutMS=5000)
            admin = client.admin
            self.assertEqual(admin.command('buildInfo')['version'], '6.0.0')
            self.assertEqual(admin.command('hello')['maxWireVersion'], 17)
            admin.command('mockClearRecorded')
            client.t.c.insert_one({'_id': 1, 'v': 'x'})
            records = admin.command('mockRecorded')['records']
            self.assertEqual([r['command'] for r in records], ['insert'])
            self.assertEqual(records[0]['sequences']['documents'], [{'_id': 1, 'v': 'x'}])
            self.assertEqual(admin.command({'mockRecorded': 1, 'command': 'find'})['records'], [])

            fid = admin.command('mockFault', 'find', action='error', code=43,
                                errorLabels=['ResumableChangeStreamError'], times=1)['faultId']
            self.assertIsInstance(fid, int)
            with self.assertRaises(errors.OperationFailure) as ctx:
                client.t.command('find', 'c')
            self.assertEqual(ctx.exception.code, 43)
            self.assertEqual(ctx.exception.details['errorLabels'], ['ResumableChangeStreamError'])

            admin.command('mockFault', 'count', action='delay', delayMs=200)
            start = time.time()
            client.t.command('count', 'c')
            self.assertGreaterEqual(time.time() - start, 0.18)

            admin.command('mockFault', 'distinct', action='hang', times=-1)
            hung = pymongo.MongoClient('mongodb://127.0.0.1:%d/?directConnection=true' % port,
                                       serverSelectionTimeoutMS=5000, socketTimeoutMS=300)
            with self.assertRaises(errors.NetworkTimeout):
                hung.t.command('distinct', 'c', key='v')
            hung.close()
            self.assertEqual(len(admin.command('mockStats')['faults']), 1)
            admin.command('mockClearFaults')
            self.assertEqual(client.t.command('distinct', 'c', key='v')['values'], ['x'])

            admin.command('mockFault', 'ping', action='close')
            with self.assertRaises(errors.AutoReconnect):
                client.t.command('ping')
            self.assertEqual(client.t.command('ping')['ok'], 1)

            stats = admin.command('mockStats')
            self.assertGreaterEqual(stats['connectionsOpened'], 2)
            self.assertGreaterEqual(stats['connectionsCurrent'], 1)
            self.assertGreater(stats['commands'], 5)
            client.close()

            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(10), 0)
            with open(record_file) as fh:
                lines = [json_util.loads(line) for line in fh]
            self.assertTrue(any(r['command'] == 'insert' and r['db'] == 't' for r in lines))
            self.assertTrue(all(set(r) >= {'seq', 'connection_id', 'opcode', 'db', 'command',
                                           'body', 'sequences', 'flags'} for r in lines))
            seqs = [r['seq'] for r in lines]
            self.assertEqual(seqs, sorted(seqs))
            with open(record_file) as fh:
                json.loads(fh.readline())  # plain JSON per line
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()

    def test_sigint_exits_zero(self):
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, 'mock_upstream.py')],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            self.assertTrue(line.startswith('mock-upstream mock listening on 127.0.0.1:'))
            proc.send_signal(signal.SIGINT)
            self.assertEqual(proc.wait(10), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


if __name__ == '__main__':
    unittest.main()
