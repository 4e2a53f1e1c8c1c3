#!/usr/bin/python3
"""Smoke test of the canned upstream: start the binary (argv[1]) on port 0, drive it with
pymongo 3.11 and raw frames (pipelining, moreToCome, garbage), then stop it with SIGTERM."""

import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

import bson
import pymongo

OP_MSG = 2013


def fail(msg):
    print('canned_smoke: FAIL: %s' % msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def op_msg(request_id, body, flags=0, sequences=None):
    payload = struct.pack('<I', flags) + b'\x00' + bson.encode(body)
    for ident, docs in (sequences or {}).items():
        section = ident.encode() + b'\x00' + b''.join(bson.encode(d) for d in docs)
        payload += b'\x01' + struct.pack('<i', 4 + len(section)) + section
    return struct.pack('<iiii', 16 + len(payload), request_id, 0, OP_MSG) + payload


def read_reply(sock):
    def exact(n):
        buf = b''
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError('closed')
            buf += chunk
        return buf
    header = exact(16)
    length, _rid, response_to, opcode = struct.unpack('<iiii', header)
    payload = exact(length - 16)
    check(opcode == OP_MSG, 'reply opcode %d' % opcode)
    return response_to, bson.decode(payload[5:])


def main():
    if len(sys.argv) != 2:
        fail('usage: canned_smoke.py PATH/TO/canned_upstream')
    binary = sys.argv[1]
    port_file = os.path.join(tempfile.mkdtemp(), 'port')
    proc = subprocess.Popen([binary, '--port', '0', '--port-file', port_file, '--threads', '2'],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        with open(port_file) as fh:
            port = int(fh.read())
        check(line == 'canned-upstream listening on 127.0.0.1:%d' % port, 'banner %r' % line)

        client = pymongo.MongoClient('mongodb://127.0.0.1:%d/?directConnection=true' % port,
                                     serverSelectionTimeoutMS=5000)
        check(client.admin.command('ping') == {'ok': 1.0}, 'ping')
        hello = client.admin.command('hello')
        check(hello['isWritablePrimary'] is True and hello['maxWireVersion'] == 21, 'hello')
        check(client.admin.command('isMaster')['ismaster'] is True, 'isMaster')
        res = client.shop.products.insert_many([{'_id': i} for i in range(7)])
        check(len(res.inserted_ids) == 7, 'insert_many')
        raw = client.shop.command('insert', 'products', documents=[{'a': 1}, {'a': 2}])
        check(raw['n'] == 2, 'insert n from body array: %r' % raw)
        docs = list(client.shop.products.find().limit(100))
        check(len(docs) == 100, 'find limit 100 returned %d' % len(docs))
        check(docs[0]['_id'] == 0 and docs[99]['_id'] == 99, 'find ids')
        check(len(bson.encode(docs[0])) == 100, 'document size %d' % len(bson.encode(docs[0])))
        check(set(docs[0]) == {'_id', 'name', 'price', 'qty'}, 'document fields')
        check(client.shop.products.find_one() is not None, 'find_one')
        reply = client.shop.command('find', 'products', limit=5000)
        check(len(reply['cursor']['firstBatch']) == 1000, 'limit cap')
        check(reply['cursor']['ns'] == 'shop.products' and reply['cursor']['id'] == 0, 'ns/id')
        more = client.shop.command('getMore', bson.int64.Int64(1), collection='products')
        check(more['cursor']['nextBatch'] == [] and more['cursor']['ns'] == 'shop.products',
              'getMore')
        check(client.admin.command('endSessions', [])['ok'] == 1, 'endSessions')
        client.close()

        # Pipelining: several frames in one write, replies in order; moreToCome gets none.
        sock = socket.create_connection(('127.0.0.1', port), timeout=5)
        frames = op_msg(1, {'ping': 1, '$db': 'admin'})
        frames += op_msg(2, {'insert': 'c', '$db': 'x'}, flags=2,
                         sequences={'documents': [{'_id': 1}]})
        frames += op_msg(3, {'find': 'c', 'limit': 3, '$db': 'x'})
        frames += op_msg(4, {'insert': 'c', '$db': 'x'}, sequences={'documents': [{}, {}, {}]})
        sock.sendall(frames)
        got = [read_reply(sock) for _ in range(3)]
        check([g[0] for g in got] == [1, 3, 4], 'pipelined responseTo %r' % [g[0] for g in got])
        check(len(got[1][1]['cursor']['firstBatch']) == 3, 'pipelined find')
        check(got[2][1]['n'] == 3, 'pipelined insert n')
        # Garbage closes this connection only.
        sock.sendall(b'\xff' * 32)
        try:
            closed = sock.recv(1) == b''
        except OSError:
            closed = True
        check(closed, 'garbage did not close the connection')
        sock.close()
        again = pymongo.MongoClient('mongodb://127.0.0.1:%d/?directConnection=true' % port,
                                    serverSelectionTimeoutMS=5000)
        check(again.admin.command('ping')['ok'] == 1, 'server alive after garbage')
        again.close()

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
        check(code == 0, 'exit code %d' % code)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    print('canned_smoke: 1 passed, 0 failed')


if __name__ == '__main__':
    start = time.time()
    main()
