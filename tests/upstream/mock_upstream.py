#!/usr/bin/python3
"""mock_upstream.py — a MongoDB-compatible test upstream for mongogate.

Promise: one process (or one in-process object) that answers the MongoDB wire protocol like
a standalone mongod would, executes CRUD/aggregate/catalog commands on an in-memory
mongomock client, records every command it receives, and injects faults on demand.

Built from:
  * mockupdb (MockupDB's listener/accept machinery, its OpMsg/Command/OpQuery request classes
    and its OpMsgReply/OpReply reply framing). What mockupdb lacks is added here: OP_MSG kind-1
    document sequences kept apart from the body, checksums, moreToCome (no reply),
    exhaustAllowed getMore streaming, OP_COMPRESSED (noop/zlib), one thread per connection
    that does not serialise the whole server, and clean handling of garbage frames.
  * mongomock (query, update and aggregation semantics).

References: MongoDB Wire Protocol (OP_MSG, OP_QUERY/OP_REPLY, OP_COMPRESSED), the driver
specifications "OP_MSG", "Handshake" and "SCRAM", and the server's command reply shapes.

Run `mock_upstream.py --help` for the CLI; see the README block in MockUpstream's docstring
for the control commands (mockRecorded, mockFault, ...).

Requires Debian's /usr/bin/python3 with python3-mockupdb, python3-mongomock, python3-pymongo.
"""

import argparse
import base64
import copy
import datetime
import hashlib
import hmac
import itertools
import json
import os
import random
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
import uuid
import zlib

import bson
from bson import json_util
from bson.binary import Binary, UuidRepresentation
from bson.codec_options import CodecOptions
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.timestamp import Timestamp

import mockupdb
import mongomock
from mongomock import aggregate as mm_aggregate
from mongomock import filtering as mm_filtering
from mongomock import helpers as mm_helpers

try:  # pymongo 3.x ships RFC 4013 SASLprep.
    from pymongo.saslprep import saslprep as _saslprep
except ImportError:  # pragma: no cover
    def _saslprep(value):
        return value

__all__ = ['MockUpstream', 'main']

# --------------------------------------------------------------------------------------------
# Wire constants
# --------------------------------------------------------------------------------------------

OP_REPLY = 1
OP_UPDATE = 2001
OP_INSERT = 2002
OP_QUERY = 2004
OP_GET_MORE = 2005
OP_DELETE = 2006
OP_KILL_CURSORS = 2007
OP_COMPRESSED = 2012
OP_MSG = 2013
_LEGACY_OPCODES = {OP_UPDATE: 'OP_UPDATE', OP_INSERT: 'OP_INSERT', OP_GET_MORE: 'OP_GET_MORE',
                   OP_DELETE: 'OP_DELETE', OP_KILL_CURSORS: 'OP_KILL_CURSORS'}

MSG_CHECKSUM_PRESENT = 1 << 0
MSG_MORE_TO_COME = 1 << 1
MSG_EXHAUST_ALLOWED = 1 << 16
_MSG_KNOWN_REQUIRED_BITS = MSG_CHECKSUM_PRESENT | MSG_MORE_TO_COME  # bits 0-15 we understand

REPLY_QUERY_FAILURE = 2

COMPRESSOR_NOOP = 0
COMPRESSOR_SNAPPY = 1
COMPRESSOR_ZLIB = 2
COMPRESSOR_ZSTD = 3

MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48000000
MAX_WRITE_BATCH_SIZE = 100000
DEFAULT_FIRST_BATCH = 101
# A reply batch stops growing at this many bytes (the server leaves room for the envelope).
_MAX_BATCH_BYTES = MAX_BSON_OBJECT_SIZE - 64 * 1024

# Decode with UNSPECIFIED so binary subtypes 3 and 4 round-trip byte-for-byte as Binary.
CODEC = CodecOptions(document_class=dict, uuid_representation=UuidRepresentation.UNSPECIFIED)

WIRE_TO_VERSION = {
    6: '3.6.0', 7: '4.0.0', 8: '4.2.0', 9: '4.4.0', 10: '4.7.0', 11: '4.8.0', 12: '4.9.0',
    13: '5.0.0', 14: '5.1.0', 15: '5.2.0', 16: '5.3.0', 17: '6.0.0', 18: '6.1.0', 19: '6.2.0',
    20: '6.3.0', 21: '7.0.0', 22: '7.1.0', 23: '7.2.0', 24: '7.3.0', 25: '8.0.0',
}

CODE_NAMES = {
    1: 'InternalError', 2: 'BadValue', 6: 'HostUnreachable', 7: 'HostNotFound',
    8: 'UnknownError', 9: 'FailedToParse', 11: 'UserNotFound', 13: 'Unauthorized',
    14: 'TypeMismatch', 17: 'ProtocolError', 18: 'AuthenticationFailed',
    20: 'IllegalOperation', 26: 'NamespaceNotFound', 27: 'IndexNotFound',
    43: 'CursorNotFound', 48: 'NamespaceExists', 50: 'MaxTimeMSExpired',
    59: 'CommandNotFound', 66: 'ImmutableField', 72: 'InvalidOptions',
    73: 'InvalidNamespace', 76: 'NoReplicationEnabled', 85: 'IndexOptionsConflict',
    86: 'IndexKeySpecsConflict', 89: 'NetworkTimeout', 91: 'ShutdownInProgress',
    112: 'WriteConflict', 115: 'CommandNotSupported', 166: 'CommandNotSupportedOnView',
    186: 'ClientMetadataCannotBeMutated', 189: 'PrimarySteppedDown',
    251: 'NoSuchTransaction', 262: 'ExceededTimeLimit', 352: 'UnsupportedOpQueryCommand',
    10107: 'NotWritablePrimary', 11000: 'DuplicateKey', 11600: 'InterruptedAtShutdown',
    11602: 'InterruptedDueToReplStateChange', 13435: 'NotPrimaryNoSecondaryOk',
    40573: 'Location40573',
}

# Commands that answer the handshake; any capitalisation of these is accepted.
_HANDSHAKE_NAMES = ('hello', 'ismaster')
# Control commands are for the tests; never recorded, never faulted.
CONTROL_COMMANDS = ('mockRecorded', 'mockClearRecorded', 'mockFault', 'mockClearFaults',
                    'mockStats', 'mockSetRole', 'mockSeed')
# Replica-set roles (mockSetRole, --role): a secondary refuses these with NotWritablePrimary.
ROLES = ('standalone', 'primary', 'secondary', 'mongos')
_WRITE_COMMANDS = frozenset(['insert', 'update', 'delete', 'findAndModify', 'create', 'drop',
                             'dropDatabase', 'createIndexes', 'dropIndexes', 'deleteIndexes',
                             'renameCollection', 'collMod', 'bulkWrite', 'commitTransaction',
                             'abortTransaction'])
# Aliases the server registers besides the canonical spelling.
_ALIASES = {'buildinfo': 'buildInfo', 'findandmodify': 'findAndModify', 'dbstats': 'dbStats',
            'collstats': 'collStats', 'getlasterror': 'getLastError'}
# Commands a client may run before authenticating when users are configured.
_AUTH_EXEMPT = {'hello', 'saslStart', 'saslContinue', 'authenticate', 'logout', 'ping',
                'buildInfo', 'endSessions', 'getnonce'}


# Real MongoDB stages that neither mongomock nor this file implement: CommandNotSupported
# (115) rather than the server's "Unrecognized pipeline stage" (40324).
_VALID_STAGES_NOT_MOCKED = frozenset([
    '$densify', '$fill', '$setWindowFields', '$search', '$searchMeta', '$vectorSearch',
    '$listSearchIndexes', '$shardedDataDistribution', '$changeStreamSplitLargeEvent',
    '$listSampledQueries', '$querySettings', '$queryStats', '$planCacheStats', '$documents'])


class ProtocolError(Exception):
    """A frame that is not valid MongoDB wire protocol: the connection is closed."""


class CommandError(Exception):
    """A command-level failure that becomes {ok: 0, code, codeName, errmsg}."""

    def __init__(self, code, errmsg, **extra):
        super().__init__(errmsg)
        self.code = code
        self.errmsg = errmsg
        self.extra = extra

    def reply(self):
        return error_doc(self.code, self.errmsg, **self.extra)


def error_doc(code, errmsg, code_name=None, **extra):
    doc = {'ok': 0.0, 'errmsg': errmsg, 'code': int(code),
           'codeName': code_name or CODE_NAMES.get(int(code), 'Location%d' % int(code))}
    doc.update(extra)
    return doc


def _ok(**fields):
    doc = dict(fields)
    doc['ok'] = 1.0
    return doc


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), the OP_MSG checksum."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _fmt_key_value(value):
    """Render a value as the server does inside an E11000 message."""
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if value is None:
        return 'null'
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, ObjectId):
        return "ObjectId('%s')" % value
    if isinstance(value, datetime.datetime):
        epoch = datetime.datetime(1970, 1, 1, tzinfo=value.tzinfo)
        return 'new Date(%d)' % int((value - epoch).total_seconds() * 1000)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        if not value:
            return '{}'
        return '{ ' + ', '.join('%s: %s' % (k, _fmt_key_value(v)) for k, v in value.items()) + ' }'
    if isinstance(value, list):
        return '[ ' + ', '.join(_fmt_key_value(v) for v in value) + ' ]'
    return repr(value)


def dup_key_errmsg(ns, index_name, key_value):
    return 'E11000 duplicate key error collection: %s index: %s dup key: %s' % (
        ns, index_name, _fmt_key_value(key_value))


def _get_dotted(doc, path):
    try:
        return mm_helpers.get_value_by_dot(doc, path)
    except (KeyError, TypeError, IndexError, AttributeError):
        return None


def _as_int(value, field, allow_none=True):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CommandError(14, "BSON field '%s' is the wrong type '%s', expected types "
                               "'[long, int, decimal, double]'" % (field, type(value).__name__))
    return int(value)


def _id_first(doc):
    if '_id' not in doc or next(iter(doc)) == '_id':
        return doc
    out = {'_id': doc['_id']}
    out.update((k, v) for k, v in doc.items() if k != '_id')
    return out


def _bson_size(doc):
    return len(bson.encode(doc, codec_options=CODEC))


def _new_uuid():
    return Binary(uuid.uuid4().bytes, 4)


def _sort_list(sort):
    if not sort:
        return None
    if not isinstance(sort, dict):
        raise CommandError(14, "Expected field sort to be of type object")
    result = []
    for key, direction in sort.items():
        if isinstance(direction, dict):
            raise CommandError(115, 'mock-upstream (mongomock) cannot sort by %r' % (direction,))
        result.append((key, -1 if direction < 0 else 1))
    return result


# --------------------------------------------------------------------------------------------
# Requests: mockupdb's request classes, parsed strictly
# --------------------------------------------------------------------------------------------

class MsgRequest(mockupdb.OpMsg):
    """mockupdb's OpMsg, with kind-1 document sequences kept apart from the body.

    `doc` is the kind-0 body only; `sequences` maps identifier -> list of documents.
    """

    def __init__(self, *args, **kwargs):
        self.sequences = kwargs.pop('sequences', {})
        super().__init__(*args, **kwargs)

    @classmethod
    def unpack(cls, msg, client, server, request_id):
        if len(msg) < 5:
            raise ProtocolError('OP_MSG shorter than flags + one section')
        flags, = struct.unpack_from('<I', msg, 0)
        if flags & 0xFFFF & ~_MSG_KNOWN_REQUIRED_BITS:
            raise ProtocolError('OP_MSG has unknown required flag bits 0x%x' % flags)
        end = len(msg)
        if flags & MSG_CHECKSUM_PRESENT:
            if end < 9:
                raise ProtocolError('OP_MSG checksum flag set but no room for a checksum')
            end -= 4
            # The checksum covers the header as well; the caller passes it via server._last_header.
        pos = 4
        body = None
        sequences = {}
        while pos < end:
            kind = msg[pos]
            pos += 1
            if kind == 0:
                if body is not None:
                    raise ProtocolError('OP_MSG has more than one kind-0 section')
                if pos + 4 > end:
                    raise ProtocolError('OP_MSG kind-0 section truncated at %d' % pos)
                size, = struct.unpack_from('<i', msg, pos)
                if size < 5 or pos + size > end:
                    raise ProtocolError('OP_MSG body length %d invalid at %d' % (size, pos))
                try:
                    body = bson.decode(msg[pos:pos + size], codec_options=CODEC)
                except Exception as exc:
                    raise ProtocolError('OP_MSG body is not valid BSON: %s' % exc)
                pos += size
            elif kind == 1:
                if pos + 4 > end:
                    raise ProtocolError('OP_MSG kind-1 section truncated at %d' % pos)
                size, = struct.unpack_from('<i', msg, pos)
                sec_end = pos + size
                if size < 5 or sec_end > end:
                    raise ProtocolError('OP_MSG kind-1 size %d invalid at %d' % (size, pos))
                nul = msg.find(b'\x00', pos + 4, sec_end)
                if nul < 0:
                    raise ProtocolError('OP_MSG kind-1 identifier not terminated')
                identifier = msg[pos + 4:nul].decode('utf-8', 'strict')
                if identifier in sequences:
                    raise ProtocolError('OP_MSG repeats sequence %r' % identifier)
                docs = []
                dpos = nul + 1
                while dpos < sec_end:
                    if dpos + 4 > sec_end:
                        raise ProtocolError('OP_MSG sequence document truncated')
                    dsize, = struct.unpack_from('<i', msg, dpos)
                    if dsize < 5 or dpos + dsize > sec_end:
                        raise ProtocolError('OP_MSG sequence document length %d invalid' % dsize)
                    try:
                        docs.append(bson.decode(msg[dpos:dpos + dsize], codec_options=CODEC))
                    except Exception as exc:
                        raise ProtocolError('OP_MSG sequence document is not BSON: %s' % exc)
                    dpos += dsize
                sequences[identifier] = docs
                pos = sec_end
            else:
                raise ProtocolError('OP_MSG section kind %d unknown' % kind)
        if body is None:
            raise ProtocolError('OP_MSG has no kind-0 section')
        checksum = None
        if flags & MSG_CHECKSUM_PRESENT:
            checksum, = struct.unpack_from('<I', msg, end)
        db = body.get('$db')
        if not isinstance(db, str):
            raise ProtocolError('OP_MSG body has no $db string')
        return cls(body, namespace=db, flags=flags, _client=client, request_id=request_id,
                   checksum=checksum, _server=server, sequences=sequences)


def _cstring(msg, pos):
    nul = msg.find(b'\x00', pos)
    if nul < 0:
        raise ProtocolError('C string not terminated at %d' % pos)
    return msg[pos:nul].decode('utf-8', 'strict'), nul + 1


def unpack_op_query(msg, client, server, request_id):
    """Parse OP_QUERY into mockupdb's Command (namespace 'db.$cmd') or OpQuery."""
    if len(msg) < 4 + 1 + 8 + 5:
        raise ProtocolError('OP_QUERY too short')
    flags, = struct.unpack_from('<i', msg, 0)
    namespace, pos = _cstring(msg, 4)
    skip, n_return = struct.unpack_from('<ii', msg, pos)
    pos += 8
    try:
        docs = bson.decode_all(msg[pos:], CODEC)
    except Exception as exc:
        raise ProtocolError('OP_QUERY documents are not BSON: %s' % exc)
    if not docs or len(docs) > 2:
        raise ProtocolError('OP_QUERY has %d documents' % len(docs))
    if namespace.endswith('.$cmd'):
        if len(docs) != 1:
            raise ProtocolError('OP_QUERY command has a field selector')
        return mockupdb.Command(docs[0], namespace=namespace[:-5], flags=flags, _client=client,
                                request_id=request_id, _server=server)
    return mockupdb.OpQuery(docs[0], fields=docs[1] if len(docs) > 1 else None,
                            namespace=namespace, flags=flags, num_to_skip=skip,
                            num_to_return=n_return, _client=client, request_id=request_id,
                            _server=server)


class Incoming(object):
    """One decoded request, whatever its opcode."""

    __slots__ = ('request', 'opcode', 'request_id', 'flags', 'db', 'body', 'sequences',
                 'name', 'compressor', 'is_command')

    def __init__(self, request, opcode, request_id, flags, db, body, sequences, compressor,
                 is_command=True):
        self.request = request
        self.opcode = opcode
        self.request_id = request_id
        self.flags = flags
        self.db = db
        self.body = body
        self.sequences = sequences
        self.compressor = compressor
        self.is_command = is_command
        self.name = next(iter(body), '') if body else ''

    @property
    def opcode_name(self):
        return 'OP_MSG' if self.opcode == OP_MSG else 'OP_QUERY'

    @property
    def more_to_come(self):
        return self.opcode == OP_MSG and bool(self.flags & MSG_MORE_TO_COME)

    def field(self, name, default=None):
        """A body field, or a document sequence of that name."""
        if name in self.sequences:
            if name in self.body:
                raise CommandError(40413, "Duplicate field '%s' in body and document sequence"
                                   % name)
            return self.sequences[name]
        return self.body.get(name, default)


# --------------------------------------------------------------------------------------------
# Connections, cursors, faults
# --------------------------------------------------------------------------------------------

class _Connection(object):
    def __init__(self, conn_id, sock, peer):
        self.id = conn_id
        self.sock = sock
        self.peer = peer
        self.client_metadata = None
        self.handshake_done = False
        self.user = None
        self.scram = None
        self.closed = False

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class _Cursor(object):
    __slots__ = ('id', 'ns', 'docs', 'pos')

    def __init__(self, cursor_id, ns, docs):
        self.id = cursor_id
        self.ns = ns
        self.docs = docs
        self.pos = 0

    @property
    def exhausted(self):
        return self.pos >= len(self.docs)


class Fault(object):
    """One injected fault: which commands it matches, what it does, how many times."""

    ACTIONS = ('delay', 'close', 'close_after', 'error', 'hang', 'reply')

    def __init__(self, command='*', action='error', delay_ms=0, code=None, code_name=None,
                 errmsg=None, error_labels=None, times=1, reply=None, db=None, collection=None,
                 fault_id=0):
        if action not in self.ACTIONS:
            raise CommandError(2, 'mockFault action must be one of %s' % (self.ACTIONS,))
        names = command if isinstance(command, (list, tuple)) else [command]
        if not names or not all(isinstance(n, str) and n for n in names):
            raise CommandError(2, "mockFault needs a command name, a list of names, or '*'")
        self.names = [MockUpstream.canonical_name(n).lower() if n != '*' else '*' for n in names]
        self.action = action
        self.delay_ms = int(delay_ms or 0)
        self.code = int(code) if code is not None else 1
        self.code_name = code_name
        self.errmsg = errmsg
        self.error_labels = list(error_labels) if error_labels else None
        self.times = int(times) if times is not None else 1
        self.reply = reply
        self.db = db
        self.collection = collection
        self.id = fault_id

    def matches(self, canonical, incoming):
        lname = canonical.lower()
        if lname not in self.names and ('*' not in self.names or lname == 'hello'):
            return False
        if self.db is not None and incoming.db != self.db:
            return False
        if self.collection is not None and incoming.body.get(incoming.name) != self.collection:
            return False
        return True

    def describe(self):
        doc = {'id': self.id, 'command': self.names, 'action': self.action,
               'delayMs': self.delay_ms, 'times': self.times}
        if self.action == 'error':
            doc.update(code=self.code, codeName=self.code_name or CODE_NAMES.get(self.code, ''),
                       errmsg=self.errmsg)
        if self.db is not None:
            doc['db'] = self.db
        if self.collection is not None:
            doc['collection'] = self.collection
        return doc


# --------------------------------------------------------------------------------------------
# SCRAM (server side), RFC 5802 / RFC 7677 as MongoDB uses them
# --------------------------------------------------------------------------------------------

class _ScramCredential(object):
    def __init__(self, mechanism, user, password):
        self.mechanism = mechanism
        if mechanism == 'SCRAM-SHA-256':
            self.digest = hashlib.sha256
            secret = _saslprep(password).encode('utf-8')
            self.iterations = 15000
        else:
            self.digest = hashlib.sha1
            secret = hashlib.md5(('%s:mongo:%s' % (user, password)).encode('utf-8')) \
                .hexdigest().encode('utf-8')
            self.iterations = 10000
        self.salt = os.urandom(28 if mechanism == 'SCRAM-SHA-256' else 16)
        salted = hashlib.pbkdf2_hmac(self.digest().name, secret, self.salt, self.iterations)
        client_key = hmac.new(salted, b'Client Key', self.digest).digest()
        self.stored_key = self.digest(client_key).digest()
        self.server_key = hmac.new(salted, b'Server Key', self.digest).digest()


class _ScramConversation(object):
    def __init__(self, credential, user, client_first_bare, server_first, nonce):
        self.credential = credential
        self.user = user
        self.client_first_bare = client_first_bare
        self.server_first = server_first
        self.nonce = nonce
        self.step = 1


def _scram_fields(text):
    fields = {}
    for part in text.split(','):
        if len(part) >= 2 and part[1] == '=':
            fields[part[0]] = part[2:]
    return fields


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------

class MockUpstream(object):
    """A MongoDB-compatible test upstream (see the module docstring).

    In-process use::

        up = MockUpstream(name='main').start()
        client = pymongo.MongoClient(up.uri)
        ...
        up.recorded(); up.add_fault('find', 'error', code=11600); up.clear_faults()
        up.stop()

    Control commands, sent directly to the server (never recorded, never faulted):
      {mockRecorded: 1, since: <seq>, command: <name>} -> {ok, records: [...]}
      {mockClearRecorded: 1}
      {mockFault: <name | [names] | '*'>, action: 'delay'|'close'|'error'|'hang'|'reply',
       delayMs, code, codeName, errmsg, errorLabels, times (default 1, -1 forever),
       reply: {...} (for 'reply'), db, collection}             -> {ok, faultId}
      {mockClearFaults: 1}
      {mockStats: 1} -> {ok, connectionsOpened, connectionsCurrent, commands, ...}
      {mockSetRole: 'primary'|'secondary'|'mongos'|'standalone', setName, hosts: [...],
       me, primary (the primary's host:port a secondary reports), electionTerm (primary:
       electionId and setVersion 1 in hello), tags: {...}}          -> {ok}
        Pose as a member of a replica set (hello describes setName, hosts, primary; a
        secondary answers writes with NotWritablePrimary) or as a mongos (msg isdbgrid).
        Data is not replicated: each server keeps its own, and its own record.
      {mockSeed: <collection>, db, documents: [...]}  -> {ok, n}
        Insert straight into the store, whatever the role (seeds a secondary's data).
    """

    def __init__(self, name='mock', host='127.0.0.1', port=0, max_wire_version=21,
                 min_wire_version=0, record_file=None, users=None, compressors=('zlib',),
                 tls_cert_key_file=None, verbose=False, cluster_time_key=None, sessions=True,
                 role=None):
        self.name = name
        self.host = host
        self._requested_port = int(port or 0)
        self.max_wire_version = int(max_wire_version)
        self.min_wire_version = int(min_wire_version)
        self.version = WIRE_TO_VERSION.get(self.max_wire_version, '7.0.0')
        self.verbose = verbose
        self._record_path = record_file
        self._record_fh = None
        self._compressors = [c for c in (compressors or ()) if c in _available_compressors()]
        self._tls_cert_key_file = tls_cert_key_file
        # Sessions (see _session_layer): retryable-write replies by (lsid, txnNumber),
        # open transactions by lsid, and the signed cluster time of a replica set.
        self._retry_replies = {}
        self._transactions = {}
        self._committed = {}
        self._cluster_key = int(cluster_time_key) if cluster_time_key else None
        self._sessions = bool(sessions)  # False: hello has no logicalSessionTimeoutMinutes
        self._cluster_counter = itertools.count(1)

        self._lock = threading.RLock()          # guards mongomock, cursors, catalog metadata
        self._rec_lock = threading.Lock()       # guards the record list and file
        self._fault_cv = threading.Condition()  # guards faults; hung requests wait on it
        self._stop_event = threading.Event()

        self._mm = mongomock.MongoClient()
        self._mm._server_version = self.version
        self._records = []
        self._seq = itertools.count(1)
        self._faults = []
        self._fault_ids = itertools.count(1)
        self._fault_epoch = 0
        self._cursors = {}
        self._views = {}       # (db, name) -> {'viewOn': str, 'pipeline': list}
        self._coll_meta = {}   # (db, name) -> {'options': {}, 'uuid': Binary, 'indexSpecs': {}}
        self._conn_ids = itertools.count(1)
        self._reply_ids = itertools.count(1)
        self._connections = {}
        self._stats = {'connectionsOpened': 0, 'commands': 0, 'legacyOpcodes': 0,
                       'protocolErrors': 0}
        self._commands_by_name = {}
        self._credentials = {}
        for user, password in (users or {}).items():
            self._credentials[user] = {
                'SCRAM-SHA-256': _ScramCredential('SCRAM-SHA-256', user, password),
                'SCRAM-SHA-1': _ScramCredential('SCRAM-SHA-1', user, password),
            }
        self._started = time.time()
        self._wire = None
        self._handlers = self._build_handlers()
        self._role = {'role': 'standalone'}  # see set_role()
        if role:
            self.set_role(**role)

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self):
        if self._record_path:
            self._record_fh = open(self._record_path, 'a', encoding='utf-8')
        self._wire = _WireServer(self, self.host, self._requested_port)
        self._wire.run()
        return self

    def stop(self):
        self._stop_event.set()
        with self._fault_cv:
            self._fault_cv.notify_all()
        if self._wire is not None:
            for conn in list(self._connections.values()):
                conn.close()
            self._wire.stop()
        if self._record_fh is not None:
            with self._rec_lock:
                self._record_fh.close()
                self._record_fh = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._wire.port if self._wire else None

    @property
    def uri(self):
        return 'mongodb://%s:%d' % (self.host, self.port)

    @property
    def address(self):
        return '%s:%d' % (self.host, self.port)

    def client(self):
        """The backing mongomock client (inspect data directly; hold no long references)."""
        return self._mm

    # ---- recording ------------------------------------------------------------------------

    def recorded(self, since=0, command=None):
        with self._rec_lock:
            records = [r for r in self._records if r['seq'] > since]
        if command is not None:
            records = [r for r in records if r['command'] == command]
        return copy.deepcopy(records)

    def clear_recorded(self):
        with self._rec_lock:
            self._records = []

    def _record(self, conn, incoming):
        record = {
            'seq': 0,
            'connection_id': conn.id,
            'opcode': incoming.opcode_name,
            'db': incoming.db,
            'command': incoming.name,
            'body': copy.deepcopy(incoming.body),
            'sequences': copy.deepcopy(incoming.sequences),
            'flags': int(incoming.flags or 0),
            'request_id': incoming.request_id,
            'compressor': _COMPRESSOR_NAMES.get(incoming.compressor),
        }
        with self._rec_lock:
            record['seq'] = next(self._seq)
            self._records.append(record)
            self._stats['commands'] += 1
            self._commands_by_name[incoming.name] = self._commands_by_name.get(incoming.name, 0) + 1
            if self._record_fh is not None:
                self._record_fh.write(json_util.dumps(
                    record, json_options=json_util.RELAXED_JSON_OPTIONS) + '\n')
                self._record_fh.flush()

    # ---- faults ---------------------------------------------------------------------------

    def add_fault(self, command='*', action='error', delay_ms=0, code=None, code_name=None,
                  errmsg=None, error_labels=None, times=1, reply=None, db=None,
                  collection=None):
        """Inject a fault; returns its id. `command` is a name, a list of names, or '*'.

        '*' matches every command except the handshake (name 'hello' explicitly to fault it).
        delay: wait delay_ms then run normally.  close: drop the TCP connection, no reply.
        error: reply {ok:0, code, codeName, errmsg, errorLabels}.  hang: no reply until
        clear_faults() (then the command runs normally).  reply: send `reply` verbatim.
        delay_ms also applies before close/error/reply.  times: -1 = forever.
        """
        fault = Fault(command, action, delay_ms, code, code_name, errmsg, error_labels, times,
                      reply, db, collection, fault_id=next(self._fault_ids))
        with self._fault_cv:
            self._faults.append(fault)
        return fault.id

    def clear_faults(self):
        with self._fault_cv:
            self._faults = []
            self._fault_epoch += 1
            self._fault_cv.notify_all()

    def faults(self):
        with self._fault_cv:
            return [f.describe() for f in self._faults]

    def _take_fault(self, canonical, incoming):
        with self._fault_cv:
            for fault in self._faults:
                if fault.matches(canonical, incoming):
                    if fault.times > 0:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _sleep(self, seconds):
        """Sleep, but wake at stop(). Returns False if the server is stopping."""
        return not self._stop_event.wait(seconds)

    # ---- replica-set / mongos role ---------------------------------------------------------

    def set_role(self, role='standalone', set_name=None, hosts=None, me=None, primary=None,
                 election_term=None, tags=None):
        if role not in ROLES:
            raise CommandError(2, 'mockSetRole: role must be one of %s' % (ROLES,))
        if role in ('primary', 'secondary') and not set_name:
            raise CommandError(2, 'mockSetRole: a replica-set role needs setName')
        self._role = {'role': role, 'setName': set_name, 'hosts': list(hosts or []), 'me': me,
                      'primary': primary, 'electionTerm': election_term,
                      'tags': dict(tags or {})}
        self._log('role: %s' % self._role)

    def role(self):
        return dict(self._role)

    # ---- stats ----------------------------------------------------------------------------

    def stats(self):
        with self._rec_lock:
            doc = dict(self._stats)
            doc['commandsByName'] = dict(self._commands_by_name)
            doc['recordsCount'] = len(self._records)
        doc['connectionsCurrent'] = len(self._connections)
        with self._lock:
            doc['cursorsOpen'] = len(self._cursors)
        with self._fault_cv:
            doc['faultsActive'] = len(self._faults)
        return doc

    # ---- names ----------------------------------------------------------------------------

    @staticmethod
    def canonical_name(name):
        if name.lower() in _HANDSHAKE_NAMES:
            return 'hello'
        return _ALIASES.get(name, name)

    # ---- connection plumbing (called from _WireServer threads) ------------------------------

    def _open_connection(self, sock, peer):
        conn = _Connection(next(self._conn_ids), sock, peer)
        with self._rec_lock:
            self._stats['connectionsOpened'] += 1
        self._connections[conn.id] = conn
        self._log('connection %d from %s' % (conn.id, mockupdb.format_addr(peer)))
        return conn

    def _close_connection(self, conn):
        self._connections.pop(conn.id, None)
        conn.close()
        self._log('connection %d closed' % conn.id)

    def _log(self, msg):
        if self.verbose:
            sys.stderr.write('mock-upstream %s: %s\n' % (self.name, msg))
            sys.stderr.flush()

    def _serve(self, conn):
        """Read frames until EOF, error, a close fault, or stop()."""
        sock = conn.sock
        while not self._stop_event.is_set():
            header = _recv_exact(sock, 16, allow_eof=True)
            if header is None:
                return
            length, request_id, _response_to, opcode = struct.unpack('<iiii', header)
            if length < 16 or length > MAX_MESSAGE_SIZE:
                raise ProtocolError('message length %d out of range' % length)
            payload = _recv_exact(sock, length - 16)
            try:
                keep_going = self._handle_frame(conn, header, payload, request_id, opcode)
            except (UnicodeDecodeError, struct.error, zlib.error, IndexError) as exc:
                raise ProtocolError('malformed %d frame: %s' % (opcode, exc))
            if not keep_going:
                return

    def _handle_frame(self, conn, header, payload, request_id, opcode):
        compressor = None
        if opcode == OP_COMPRESSED:
            opcode, payload, compressor = _decompress(payload)
            header = struct.pack('<iiii', 16 + len(payload), request_id, 0, opcode)
        if opcode == OP_MSG:
            req = MsgRequest.unpack(payload, conn.sock, self._wire, request_id)
            if req.flags & MSG_CHECKSUM_PRESENT:
                if crc32c(header + payload[:-4]) != req.checksum:
                    raise ProtocolError('OP_MSG checksum mismatch')
            incoming = Incoming(req, OP_MSG, request_id, req.flags, req.namespace, req.doc,
                                req.sequences, compressor)
        elif opcode == OP_QUERY:
            req = unpack_op_query(payload, conn.sock, self._wire, request_id)
            body = req.doc
            is_command = isinstance(req, mockupdb.Command)
            if is_command and '$query' in body and isinstance(body['$query'], dict):
                body = body['$query']  # legacy read-preference wrapping
            db = req.namespace if is_command else req.namespace.split('.', 1)[0]
            incoming = Incoming(req, OP_QUERY, request_id, req.flags or 0, db, body, {},
                                compressor, is_command=is_command)
        elif opcode in _LEGACY_OPCODES:
            with self._rec_lock:
                self._stats['legacyOpcodes'] += 1
            if opcode == OP_GET_MORE:  # removed in 6.0; answer with a query failure
                self._send(conn, None, {'$err': 'OP_GET_MORE is no longer supported',
                                        'code': 5739101, 'ok': 0.0},
                           response_to=request_id, legacy_failure=True)
            return True  # fire-and-forget legacy writes are dropped, as 6.0+ does
        else:
            raise ProtocolError('unknown opcode %d' % opcode)
        return self._process(conn, incoming)

    def _send(self, conn, incoming, doc, flags=0, response_to=None, legacy_failure=False):
        """Frame `doc` as the reply to `incoming` (OP_REPLY for OP_QUERY, else OP_MSG)."""
        if incoming is None or incoming.opcode == OP_QUERY:
            reply = mockupdb.OpReply(doc, flags=REPLY_QUERY_FAILURE if legacy_failure else 0)
        else:
            reply = mockupdb.OpMsgReply(doc, flags=flags)
        request = incoming.request if incoming is not None else _FakeRequest(response_to)
        try:
            raw = bytearray(reply.reply_bytes(request))
        except Exception as exc:  # unencodable reply: tell the client, keep the connection
            err = error_doc(1, 'mock-upstream could not encode the reply: %s' % exc)
            if incoming is None or incoming.opcode == OP_QUERY:
                reply = mockupdb.OpReply(err)
            else:
                reply = mockupdb.OpMsgReply(err)
            raw = bytearray(reply.reply_bytes(request))
        reply_id = next(self._reply_ids)
        struct.pack_into('<ii', raw, 4, reply_id,
                         response_to if response_to is not None else incoming.request_id)
        if incoming is not None and incoming.compressor is not None:
            raw = _compress(raw, incoming.compressor)
        conn.sock.sendall(raw)
        return reply_id

    # ---- request processing ---------------------------------------------------------------

    def _process(self, conn, incoming):
        if not incoming.is_command:
            self._send(conn, incoming, {
                '$err': 'Unsupported OP_QUERY command: find. The client driver may require an '
                        'upgrade. For more details see '
                        'https://dochub.mongodb.org/core/legacy-opcode-removal',
                'code': 352, 'ok': 0.0}, legacy_failure=True)
            return True
        if not incoming.name:
            self._send(conn, incoming, error_doc(59, 'no such command: \'\''))
            return True
        if incoming.name in CONTROL_COMMANDS:
            try:
                doc = self._control(incoming)
            except CommandError as exc:
                doc = exc.reply()
            if not incoming.more_to_come:
                self._send(conn, incoming, doc)
            return True

        canonical = self.canonical_name(incoming.name)
        self._record(conn, incoming)

        fault = self._take_fault(canonical, incoming)
        if fault is not None:
            self._log('fault %s on %s' % (fault.action, incoming.name))
            if fault.delay_ms and not self._sleep(fault.delay_ms / 1000.0):
                return False
            if fault.action == 'close':
                conn.close()
                return False
            if fault.action == 'hang':
                with self._fault_cv:
                    epoch = self._fault_epoch
                    while self._fault_epoch == epoch and not self._stop_event.is_set():
                        self._fault_cv.wait(0.2)
                if self._stop_event.is_set():
                    return False
            elif fault.action == 'error':
                doc = error_doc(fault.code, fault.errmsg or
                                'mock-upstream %s: injected fault on %s' % (self.name,
                                                                            incoming.name),
                                code_name=fault.code_name)
                if fault.error_labels:
                    doc['errorLabels'] = fault.error_labels
                if not incoming.more_to_come:
                    self._send(conn, incoming, doc)
                return True
            elif fault.action == 'reply':
                if not incoming.more_to_come:
                    self._send(conn, incoming, dict(fault.reply or {'ok': 1.0}))
                return True

        if (canonical == 'getMore' and incoming.opcode == OP_MSG
                and incoming.flags & MSG_EXHAUST_ALLOWED and not incoming.more_to_come):
            return self._stream_get_more(conn, incoming)

        doc = self._execute(conn, incoming, canonical)
        if fault is not None and fault.action == 'close_after':
            conn.close()  # the command ran, but its reply is lost: a network error
            return False
        if incoming.more_to_come:
            return True
        if self._cluster_key is not None and canonical != 'hello':
            doc = self._with_cluster_time(doc)
        self._send(conn, incoming, doc)
        return True

    def _stream_get_more(self, conn, incoming):
        """exhaustAllowed: keep sending batches with moreToCome until the cursor is done."""
        response_to = incoming.request_id
        while not self._stop_event.is_set():
            doc = self._execute(conn, incoming, 'getMore')
            cursor = doc.get('cursor') if doc.get('ok') else None
            more = bool(cursor) and cursor.get('id', 0) != 0
            response_to = self._send(conn, incoming, doc, flags=MSG_MORE_TO_COME if more else 0,
                                     response_to=response_to)
            if not more:
                return True
        return False

    def _execute(self, conn, incoming, canonical):
        if (incoming.opcode == OP_QUERY and canonical != 'hello'
                and self.max_wire_version >= 17):
            return error_doc(352, 'Unsupported OP_QUERY command: %s. The client driver may '
                                  'require an upgrade. For more details see '
                                  'https://dochub.mongodb.org/core/legacy-opcode-removal'
                             % incoming.name)
        if self._credentials and conn.user is None and canonical not in _AUTH_EXEMPT:
            return error_doc(13, 'Command %s requires authentication' % incoming.name)
        if self._role['role'] == 'secondary' and canonical in _WRITE_COMMANDS:
            # As mongod 4.4+: a retryable write (txnNumber, no transaction) may be retried.
            body = incoming.body
            retryable = 'txnNumber' in body and body.get('autocommit', True) is not False
            return error_doc(10107, 'not primary',
                             **({'errorLabels': ['RetryableWriteError']} if retryable else {}))
        handler = self._handlers.get(canonical)
        if handler is None:
            return error_doc(59, "no such command: '%s'" % incoming.name)
        try:
            with self._lock:
                early = self._session_layer(conn, incoming, canonical, handler)
                if early is not None:
                    return early
                return handler(conn, incoming)
        except CommandError as exc:
            return exc.reply()
        except mongomock.OperationFailure as exc:
            code = exc.code if exc.code else 2
            return error_doc(code, str(exc))
        except NotImplementedError as exc:
            return error_doc(115, 'mock-upstream (mongomock) does not support this: %s' % exc)
        except (ValueError, TypeError, KeyError, bson.errors.InvalidDocument) as exc:
            return error_doc(2, '%s: %s' % (type(exc).__name__, exc))
        except Exception as exc:  # a bug here must not take the connection down
            traceback.print_exc()
            return error_doc(1, 'mock-upstream internal error: %s: %s'
                             % (type(exc).__name__, exc))

    # ---- sessions, transactions, cluster time -----------------------------------------------

    _RETRYABLE_WRITES = ('insert', 'update', 'delete', 'findAndModify')
    _TXN_BUFFERED = ('insert', 'update', 'delete')

    @staticmethod
    def _lsid_key(body):
        lsid = body.get('lsid')
        if not isinstance(lsid, dict) or 'id' not in lsid:
            return None
        value = lsid['id']
        return bytes(value.bytes if isinstance(value, uuid.UUID) else value)

    def _session_layer(self, conn, incoming, canonical, handler):
        """Minimal server-side sessions (under self._lock); None: run the command normally.

        * $clusterTime signed by another key (another cluster) -> KeyNotFound (211), as a
          real replica set answers a time it cannot verify.
        * Retryable writes: a write with lsid + txnNumber outside a transaction runs once;
          a retry gets the first reply again.
        * Transactions (autocommit: false): startTransaction opens one per session; writes
          are buffered until commitTransaction runs them, abortTransaction drops them;
          reads run at once (they do not see the transaction's own writes).
        """
        body = incoming.body
        if self._cluster_key is not None and isinstance(body.get('$clusterTime'), dict):
            key_id = body['$clusterTime'].get('signature', {}).get('keyId')
            if key_id != self._cluster_key:
                return error_doc(211, 'Cache Reader No keys found for HMAC that is valid for time',
                                 code_name='KeyNotFound')
        key = self._lsid_key(body)
        txn_number = body.get('txnNumber')
        if canonical in ('commitTransaction', 'abortTransaction'):
            if key is None or txn_number is None:
                return error_doc(50768, '%s must be run within a transaction' % canonical)
            open_txn = self._transactions.get(key)
            if open_txn is None or open_txn['txnNumber'] != txn_number:
                if canonical == 'commitTransaction' and self._committed.get(key) == txn_number:
                    return _ok()  # a retried commit
                return error_doc(251, 'Transaction with { txnNumber: %s } has been aborted.'
                                 % txn_number, code_name='NoSuchTransaction',
                                 errorLabels=['TransientTransactionError'])
            del self._transactions[key]
            if canonical == 'commitTransaction':
                for name, op in open_txn['ops']:
                    self._handlers[name](conn, op)
                self._committed[key] = txn_number
            return _ok()
        if key is None or txn_number is None:
            return None
        if body.get('autocommit') is False:
            if body.get('startTransaction'):
                self._transactions[key] = {'txnNumber': txn_number, 'ops': []}
            open_txn = self._transactions.get(key)
            if open_txn is None or open_txn['txnNumber'] != txn_number:
                return error_doc(251, 'Transaction with { txnNumber: %s } has been aborted.'
                                 % txn_number, code_name='NoSuchTransaction',
                                 errorLabels=['TransientTransactionError'])
            if canonical in self._TXN_BUFFERED:
                open_txn['ops'].append((canonical, incoming))
                count = len(incoming.field(
                    {'insert': 'documents', 'update': 'updates', 'delete': 'deletes'}[canonical])
                    or [])
                return _ok(n=count, nModified=count) if canonical == 'update' else _ok(n=count)
            return None
        if canonical in self._RETRYABLE_WRITES:
            cached = self._retry_replies.get((key, txn_number))
            if cached is not None:
                return copy.deepcopy(cached)
            reply = handler(conn, incoming)
            self._retry_replies[(key, txn_number)] = copy.deepcopy(reply)
            return reply
        return None

    def _with_cluster_time(self, doc):
        """A replica set's reply fields: operationTime and $clusterTime signed with this
        mock's key. Increments start at keyId * 1,000,000, so tests can tell whose time
        a request carries."""
        doc = dict(doc)
        ts = Timestamp(int(time.time()),
                       self._cluster_key * 1000000 + next(self._cluster_counter))
        doc['operationTime'] = ts
        doc['$clusterTime'] = {
            'clusterTime': ts,
            'signature': {'hash': Binary(hashlib.sha1(b'%d:%d:%d' % (
                self._cluster_key, ts.time, ts.inc)).digest()), 'keyId': Int64(self._cluster_key)},
        }
        return doc

    # ---- control commands -----------------------------------------------------------------

    def _control(self, incoming):
        body = incoming.body
        name = incoming.name
        if name == 'mockRecorded':
            records = self.recorded(since=int(body.get('since', 0) or 0),
                                    command=body.get('command'))
            out = []
            total = 0
            truncated = False
            for rec in records:
                size = _bson_size(rec)
                if total + size > _MAX_BATCH_BYTES:
                    truncated = True
                    break
                out.append(rec)
                total += size
            return _ok(records=out, truncated=truncated)
        if name == 'mockClearRecorded':
            self.clear_recorded()
            return _ok()
        if name == 'mockFault':
            times = body.get('times', 1)
            fault_id = self.add_fault(
                command=body.get('mockFault'), action=body.get('action', 'error'),
                delay_ms=body.get('delayMs', 0), code=body.get('code'),
                code_name=body.get('codeName'), errmsg=body.get('errmsg'),
                error_labels=body.get('errorLabels'), times=times, reply=body.get('reply'),
                db=body.get('db'), collection=body.get('collection'))
            return _ok(faultId=fault_id)
        if name == 'mockClearFaults':
            self.clear_faults()
            return _ok()
        if name == 'mockSetRole':
            self.set_role(role=body.get('mockSetRole'), set_name=body.get('setName'),
                          hosts=body.get('hosts'), me=body.get('me'),
                          primary=body.get('primary'), election_term=body.get('electionTerm'),
                          tags=body.get('tags'))
            return _ok()
        if name == 'mockSeed':
            docs = list(body.get('documents') or [])
            with self._lock:
                self._ensure_collection(body.get('db') or 'test', body.get('mockSeed'))
                if docs:
                    self._collection(body.get('db') or 'test', body.get('mockSeed')).insert_many(docs)
            return _ok(n=len(docs))
        if name == 'mockStats':
            doc = self.stats()
            doc['faults'] = self.faults()
            doc['ok'] = 1.0
            return doc
        raise CommandError(59, "no such command: '%s'" % name)

    # ---- command table --------------------------------------------------------------------

    def _build_handlers(self):
        h = {
            'hello': self._cmd_hello,
            'ping': lambda c, i: _ok(),
            'buildInfo': self._cmd_build_info,
            'getParameter': self._cmd_get_parameter,
            'getCmdLineOpts': self._cmd_get_cmd_line_opts,
            'connectionStatus': self._cmd_connection_status,
            'hostInfo': self._cmd_host_info,
            'getLog': self._cmd_get_log,
            'serverStatus': self._cmd_server_status,
            'whatsmyuri': lambda c, i: _ok(you='%s:%d' % c.peer[:2] if isinstance(c.peer, tuple)
                                           else str(c.peer)),
            'listCommands': self._cmd_list_commands,
            'endSessions': lambda c, i: _ok(),
            'killSessions': lambda c, i: _ok(),
            'killAllSessions': lambda c, i: _ok(),
            'killAllSessionsByPattern': lambda c, i: _ok(),
            'refreshSessions': lambda c, i: _ok(),
            'startSession': lambda c, i: _ok(id={'id': _new_uuid()}, timeoutMinutes=30),
            'commitTransaction': lambda c, i: _ok(),
            'abortTransaction': lambda c, i: _ok(),
            'logout': self._cmd_logout,
            'currentOp': lambda c, i: _ok(inprog=[]),
            'killOp': lambda c, i: _ok(info='attempting to kill op'),
            'fsync': lambda c, i: _ok(numFiles=1),
            'setFeatureCompatibilityVersion': lambda c, i: _ok(),
            'replSetGetStatus': lambda c, i: error_doc(76, 'not running with --replSet'),
            'saslStart': self._cmd_sasl_start,
            'saslContinue': self._cmd_sasl_continue,
            'insert': self._cmd_insert,
            'find': self._cmd_find,
            'getMore': self._cmd_get_more,
            'killCursors': self._cmd_kill_cursors,
            'update': self._cmd_update,
            'delete': self._cmd_delete,
            'findAndModify': self._cmd_find_and_modify,
            'count': self._cmd_count,
            'distinct': self._cmd_distinct,
            'aggregate': self._cmd_aggregate,
            'create': self._cmd_create,
            'drop': self._cmd_drop,
            'dropDatabase': self._cmd_drop_database,
            'listCollections': self._cmd_list_collections,
            'listDatabases': self._cmd_list_databases,
            'createIndexes': self._cmd_create_indexes,
            'listIndexes': self._cmd_list_indexes,
            'dropIndexes': self._cmd_drop_indexes,
            'deleteIndexes': self._cmd_drop_indexes,
            'dbStats': self._cmd_db_stats,
            'collStats': self._cmd_coll_stats,
            'renameCollection': self._cmd_rename_collection,
            'collMod': self._cmd_coll_mod,
            'validate': self._cmd_validate,
            'explain': self._cmd_explain,
        }
        if self.max_wire_version >= 25:
            h['bulkWrite'] = self._cmd_bulk_write
        return h

    # ---- handshake and server information ---------------------------------------------------

    def _cmd_hello(self, conn, incoming):
        body = incoming.body
        if 'client' in body:
            if conn.client_metadata is not None:
                raise CommandError(186, 'The client metadata document may only be sent in the '
                                        'first hello')
            conn.client_metadata = body['client']
        conn.handshake_done = True
        doc = {}
        role = self._role
        writable = role['role'] != 'secondary'
        if incoming.name == 'hello':
            doc['isWritablePrimary'] = writable
        else:
            doc['ismaster'] = writable
        if role['role'] == 'mongos':
            doc['msg'] = 'isdbgrid'
        elif role['role'] in ('primary', 'secondary'):
            me = role['me'] or self.address
            doc.update({'setName': role['setName'], 'hosts': role['hosts'] or [me], 'me': me,
                        'secondary': role['role'] == 'secondary'})
            primary = me if role['role'] == 'primary' else role['primary']
            if primary:
                doc['primary'] = primary
            if role['tags']:
                doc['tags'] = role['tags']
            if role['role'] == 'primary' and role['electionTerm'] is not None:
                doc['setVersion'] = 1
                doc['electionId'] = ObjectId('7fffffff%016x' % int(role['electionTerm']))
        doc.update({
            'helloOk': True,
            'maxBsonObjectSize': MAX_BSON_OBJECT_SIZE,
            'maxMessageSizeBytes': MAX_MESSAGE_SIZE,
            'maxWriteBatchSize': MAX_WRITE_BATCH_SIZE,
            'localTime': datetime.datetime.utcnow(),
            'connectionId': conn.id,
            'minWireVersion': self.min_wire_version,
            'maxWireVersion': self.max_wire_version,
            'readOnly': False,
        })
        if self._sessions:
            doc['logicalSessionTimeoutMinutes'] = 30
        wanted = body.get('compression')
        if isinstance(wanted, list) and self._compressors:
            agreed = [c for c in wanted if c in self._compressors]
            if agreed:
                doc['compression'] = agreed
        mechs_for = body.get('saslSupportedMechs')
        if isinstance(mechs_for, str) and self._credentials:
            user = mechs_for.split('.', 1)[1] if '.' in mechs_for else mechs_for
            if user in self._credentials:
                doc['saslSupportedMechs'] = ['SCRAM-SHA-1', 'SCRAM-SHA-256']
        doc['ok'] = 1.0
        return doc

    def _version_array(self):
        return [int(p) for p in self.version.split('.')] + [0]

    def _cmd_build_info(self, conn, incoming):
        return _ok(version=self.version, gitVersion='0000000000000000000000000000000000000000',
                   modules=[], allocator='tcmalloc', javascriptEngine='mozjs',
                   sysInfo='deprecated', versionArray=self._version_array(),
                   openssl={'running': 'OpenSSL 3.0.0', 'compiled': 'OpenSSL 3.0.0'},
                   buildEnvironment={'distmod': 'mock-upstream', 'target_arch': 'x86_64'},
                   bits=64, debug=False, maxBsonObjectSize=MAX_BSON_OBJECT_SIZE,
                   storageEngines=['devnull', 'wiredTiger'])

    def _cmd_get_parameter(self, conn, incoming):
        fcv = '.'.join(self.version.split('.')[:2])
        known = {
            'featureCompatibilityVersion': {'version': fcv},
            'authenticationMechanisms': ['SCRAM-SHA-1', 'SCRAM-SHA-256'],
            'requireApiVersion': False,
            'logLevel': 0,
            'quiet': False,
            'transactionLifetimeLimitSeconds': 60,
        }
        body = incoming.body
        if body.get('getParameter') == '*':
            return _ok(**known)
        out = {k: v for k, v in known.items() if k in body}
        if not out:
            raise CommandError(72, 'no option found to get')
        return _ok(**out)

    def _cmd_get_cmd_line_opts(self, conn, incoming):
        return _ok(argv=['mongod', '--port', str(self.port)],
                   parsed={'net': {'bindIp': self.host, 'port': self.port}})

    def _cmd_connection_status(self, conn, incoming):
        users = [{'user': conn.user, 'db': 'admin'}] if conn.user else []
        roles = [{'role': 'root', 'db': 'admin'}] if conn.user else []
        return _ok(authInfo={'authenticatedUsers': users, 'authenticatedUserRoles': roles})

    def _cmd_host_info(self, conn, incoming):
        return _ok(system={'currentTime': datetime.datetime.utcnow(), 'hostname': 'mock-upstream',
                           'cpuAddrSize': 64, 'memSizeMB': 1024, 'memLimitMB': 1024,
                           'numCores': os.cpu_count() or 1, 'cpuArch': 'x86_64',
                           'numaEnabled': False},
                   os={'type': 'Linux', 'name': 'mock-upstream', 'version': ''},
                   extra={})

    def _cmd_get_log(self, conn, incoming):
        which = incoming.body.get('getLog')
        if which == '*':
            return _ok(names=['global', 'startupWarnings'])
        return _ok(totalLinesWritten=0, log=[])

    def _cmd_server_status(self, conn, incoming):
        uptime = time.time() - self._started
        return _ok(host='mock-upstream-%s' % self.name, version=self.version, process='mongod',
                   pid=Int64(os.getpid()), uptime=float(int(uptime)),
                   uptimeMillis=Int64(int(uptime * 1000)),
                   localTime=datetime.datetime.utcnow(),
                   connections={'current': len(self._connections), 'available': 838860,
                                'totalCreated': self._stats['connectionsOpened']})

    def _cmd_list_commands(self, conn, incoming):
        return _ok(commands={name: {'help': '', 'requiresAuth': name not in _AUTH_EXEMPT,
                                    'adminOnly': False}
                             for name in sorted(self._handlers)})

    # ---- authentication ---------------------------------------------------------------------

    def _cmd_logout(self, conn, incoming):
        conn.user = None
        return _ok()

    def _cmd_sasl_start(self, conn, incoming):
        body = incoming.body
        mechanism = body.get('mechanism')
        if mechanism not in ('SCRAM-SHA-1', 'SCRAM-SHA-256'):
            raise CommandError(2, 'Received authentication for mechanism %s which is not '
                                  'enabled' % mechanism)
        payload = bytes(body.get('payload', b''))
        try:
            text = payload.decode('utf-8')
            gs2, rest = text.split(',', 2)[:2], text.split(',', 2)[2]
        except Exception:
            raise CommandError(17, 'Invalid SCRAM client-first message')
        if gs2[0] not in ('n', 'y'):
            raise CommandError(18, 'Authentication failed.')
        fields = _scram_fields(rest)
        user = fields.get('n', '').replace('=2C', ',').replace('=3D', '=')
        cnonce = fields.get('r')
        cred = self._credentials.get(user, {}).get(mechanism)
        if cred is None or not cnonce or incoming.db not in ('admin', '$external'):
            raise CommandError(18, 'Authentication failed.')
        nonce = cnonce + base64.b64encode(os.urandom(24)).decode('ascii')
        server_first = 'r=%s,s=%s,i=%d' % (nonce, base64.b64encode(cred.salt).decode('ascii'),
                                           cred.iterations)
        conn.scram = _ScramConversation(cred, user, rest, server_first, nonce)
        return _ok(conversationId=1, done=False, payload=Binary(server_first.encode('utf-8')))

    def _cmd_sasl_continue(self, conn, incoming):
        conv = conn.scram
        if conv is None:
            raise CommandError(17, 'No SASL session state found')
        payload = bytes(incoming.body.get('payload', b''))
        if conv.step == 2:  # the empty final exchange (no skipEmptyExchange)
            conn.scram = None
            return _ok(conversationId=1, done=True, payload=Binary(b''))
        text = payload.decode('utf-8', 'replace')
        fields = _scram_fields(text)
        proof_b64 = fields.get('p')
        if fields.get('r') != conv.nonce or not proof_b64 or ',p=' not in text:
            conn.scram = None
            raise CommandError(18, 'Authentication failed.')
        without_proof = text[:text.rindex(',p=')]
        auth_message = ','.join([conv.client_first_bare, conv.server_first, without_proof])
        cred = conv.credential
        signature = hmac.new(cred.stored_key, auth_message.encode('utf-8'), cred.digest).digest()
        try:
            proof = base64.b64decode(proof_b64)
        except Exception:
            proof = b''
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if len(proof) != len(signature) or \
                not hmac.compare_digest(cred.digest(client_key).digest(), cred.stored_key):
            conn.scram = None
            raise CommandError(18, 'Authentication failed.')
        server_sig = hmac.new(cred.server_key, auth_message.encode('utf-8'), cred.digest).digest()
        conn.user = conv.user
        final = ('v=' + base64.b64encode(server_sig).decode('ascii')).encode('utf-8')
        skip_empty = bool((incoming.body.get('options') or {}).get('skipEmptyExchange'))
        if skip_empty:
            conn.scram = None
            return _ok(conversationId=1, done=True, payload=Binary(final))
        conv.step = 2
        return _ok(conversationId=1, done=False, payload=Binary(final))

    # ---- catalog helpers --------------------------------------------------------------------

    def _cstore(self, db, coll):
        return self._mm._store[db][coll]

    def _exists(self, db, coll):
        return (db, coll) in self._views or bool(self._cstore(db, coll).is_created)

    def _meta(self, db, coll):
        meta = self._coll_meta.get((db, coll))
        if meta is None:
            meta = self._coll_meta[(db, coll)] = {'options': {}, 'uuid': _new_uuid(),
                                                  'indexSpecs': {}}
        return meta

    def _ensure_collection(self, db, coll):
        if (db, coll) in self._views:
            raise CommandError(166, 'Namespace %s.%s is a view, not a collection' % (db, coll))
        self._cstore(db, coll).create()
        self._meta(db, coll)

    def _collection(self, db, coll):
        return self._mm[db][coll]

    @staticmethod
    def _coll_name(incoming, field=None, allow_dollar=False):
        value = incoming.body.get(field or incoming.name)
        if not isinstance(value, str) or not value:
            raise CommandError(73, 'collection name has invalid type %s'
                               % type(value).__name__)
        if ('$' in value and not allow_dollar) or '\x00' in value:
            raise CommandError(73, "Invalid collection name: %s" % value)
        return value

    def _resolve_view(self, db, coll):
        """-> (physical collection, pipeline prefix) following view chains."""
        prefix = []
        seen = set()
        while (db, coll) in self._views:
            if coll in seen:
                raise CommandError(2, 'view cycle at %s.%s' % (db, coll))
            seen.add(coll)
            view = self._views[(db, coll)]
            prefix = list(view['pipeline']) + prefix
            coll = view['viewOn']
        return coll, prefix

    def _new_cursor_id(self):
        while True:
            cid = random.randint(1, (1 << 63) - 1)
            if cid not in self._cursors:
                return cid

    def _batch(self, cursor, limit):
        batch = []
        size = 0
        while cursor.pos < len(cursor.docs) and (limit is None or len(batch) < limit):
            doc = cursor.docs[cursor.pos]
            doc_size = _bson_size(doc)
            if batch and size + doc_size > _MAX_BATCH_BYTES:
                break
            batch.append(doc)
            size += doc_size
            cursor.pos += 1
        return batch

    def _cursor_reply(self, ns, docs, batch_size, single_batch=False):
        """The first reply of find/aggregate/listCollections/listIndexes."""
        if batch_size is None:
            batch_size = DEFAULT_FIRST_BATCH
        cursor = _Cursor(0, ns, docs)
        batch = self._batch(cursor, batch_size)
        cursor_id = 0
        if not cursor.exhausted and not single_batch:
            cursor_id = self._new_cursor_id()
            cursor.id = cursor_id
            self._cursors[cursor_id] = cursor
        return _ok(cursor={'firstBatch': batch, 'id': Int64(cursor_id), 'ns': ns})

    @staticmethod
    def _batch_size(incoming, container=None):
        src = incoming.body if container is None else container
        value = src.get('batchSize')
        if value is None:
            return None
        value = _as_int(value, 'batchSize')
        if value < 0:
            raise CommandError(51024, "BSON field 'batchSize' value must be >= 0, actual value "
                                      "'%d'" % value)
        return value

    def _run_find(self, db, coll, filt, sort, projection, skip, limit):
        physical, prefix = self._resolve_view(db, coll)
        if prefix:
            pipeline = list(prefix)
            if filt:
                pipeline.append({'$match': filt})
            if sort:
                pipeline.append({'$sort': dict(sort)})
            if skip:
                pipeline.append({'$skip': skip})
            if limit:
                pipeline.append({'$limit': limit})
            if projection:
                pipeline.append({'$project': projection})
            return self._run_pipeline(db, physical, pipeline)
        collection = self._collection(db, physical)
        return list(collection.find(filt or {}, projection=projection or None, skip=skip or 0,
                                    limit=limit or 0, sort=sort))

    # ---- reads -----------------------------------------------------------------------------

    def _cmd_find(self, conn, incoming):
        db = incoming.db
        coll = self._coll_name(incoming)
        body = incoming.body
        filt = body.get('filter') or {}
        if not isinstance(filt, dict):
            raise CommandError(14, "BSON field 'FindCommandRequest.filter' is the wrong type")
        limit = _as_int(body.get('limit'), 'limit')
        if limit is not None and limit < 0:
            raise CommandError(51024, "BSON field 'limit' value must be >= 0, actual value "
                                      "'%d'" % limit)
        skip = _as_int(body.get('skip'), 'skip') or 0
        if skip < 0:
            raise CommandError(51024, "BSON field 'skip' value must be >= 0, actual value "
                                      "'%d'" % skip)
        docs = self._run_find(db, coll, filt, _sort_list(body.get('sort')),
                              body.get('projection'), skip, limit or 0)
        return self._cursor_reply('%s.%s' % (db, coll), docs, self._batch_size(incoming),
                                  single_batch=bool(body.get('singleBatch')))

    def _cmd_get_more(self, conn, incoming):
        body = incoming.body
        cursor_id = body.get('getMore')
        if not isinstance(cursor_id, Int64):
            raise CommandError(14, "Field 'getMore' must be of type long in: %s"
                               % json_util.dumps(body))
        coll = body.get('collection')
        if not isinstance(coll, str):
            raise CommandError(14, "Field 'collection' must be of type string")
        cursor = self._cursors.get(int(cursor_id))
        if cursor is None:
            raise CommandError(43, 'cursor id %d not found' % cursor_id)
        ns = '%s.%s' % (incoming.db, coll)
        if cursor.ns != ns:
            raise CommandError(13, "Requested getMore on namespace '%s', but cursor belongs to a "
                                   "different namespace %s" % (ns, cursor.ns))
        batch = self._batch(cursor, self._batch_size(incoming) or None)
        next_id = cursor.id
        if cursor.exhausted:
            self._cursors.pop(cursor.id, None)
            next_id = 0
        return _ok(cursor={'nextBatch': batch, 'id': Int64(next_id), 'ns': ns})

    def _cmd_kill_cursors(self, conn, incoming):
        coll = self._coll_name(incoming, allow_dollar=True)
        ns = '%s.%s' % (incoming.db, coll)
        ids = incoming.body.get('cursors')
        if not isinstance(ids, list):
            raise CommandError(14, "BSON field 'killCursors.cursors' is missing or not an array")
        killed, not_found = [], []
        for cid in ids:
            cursor = self._cursors.get(int(cid))
            if cursor is not None and cursor.ns == ns:
                del self._cursors[int(cid)]
                killed.append(Int64(cid))
            else:
                not_found.append(Int64(cid))
        return _ok(cursorsKilled=killed, cursorsNotFound=not_found, cursorsAlive=[],
                   cursorsUnknown=[])

    def _cmd_count(self, conn, incoming):
        db = incoming.db
        coll = self._coll_name(incoming)
        body = incoming.body
        query = body.get('query') or {}
        skip = _as_int(body.get('skip'), 'skip') or 0
        limit = abs(_as_int(body.get('limit'), 'limit') or 0)
        physical, prefix = self._resolve_view(db, coll)
        if prefix:
            docs = self._run_find(db, coll, query, None, None, skip, limit)
            return _ok(n=len(docs))
        kwargs = {'skip': skip}
        if limit:
            kwargs['limit'] = limit
        return _ok(n=self._collection(db, physical).count_documents(query, **kwargs))

    def _cmd_distinct(self, conn, incoming):
        db = incoming.db
        coll = self._coll_name(incoming)
        key = incoming.body.get('key')
        if not isinstance(key, str):
            raise CommandError(14, "BSON field 'distinct.key' is missing or not a string")
        query = incoming.body.get('query') or {}
        physical, prefix = self._resolve_view(db, coll)
        if prefix:
            values = []
            for doc in self._run_find(db, coll, query, None, None, 0, 0):
                value = _get_dotted(doc, key)
                for v in (value if isinstance(value, list) else [value]):
                    if v is not None and v not in values:
                        values.append(v)
            return _ok(values=values)
        return _ok(values=list(self._collection(db, physical).distinct(key, query)))

    # ---- aggregation -------------------------------------------------------------------------

    def _cmd_aggregate(self, conn, incoming):
        db = incoming.db
        body = incoming.body
        target = body.get('aggregate')
        pipeline = body.get('pipeline')
        if not isinstance(pipeline, list):
            raise CommandError(14, "'pipeline' option must be specified as an array")
        for stage in pipeline:
            if not isinstance(stage, dict) or len(stage) != 1:
                raise CommandError(40323, 'A pipeline stage specification object must contain '
                                          'exactly one field.')
        if body.get('explain'):
            return self._explain_doc(db, target if isinstance(target, str) else '$cmd.aggregate',
                                     {'pipeline': pipeline})
        cursor_opts = body.get('cursor')
        if not isinstance(cursor_opts, dict):
            raise CommandError(9, "The 'cursor' option is required, except for aggregate with the "
                                  "explain argument")
        if pipeline and '$changeStream' in pipeline[0]:
            raise CommandError(40573, 'The $changeStream stage is only supported on replica sets')
        if isinstance(target, str):
            ns = '%s.%s' % (db, target)
            physical, prefix = self._resolve_view(db, target)
            docs = self._run_pipeline(db, physical, prefix + pipeline)
        elif target == 1 and not isinstance(target, bool):
            ns = '%s.$cmd.aggregate' % db
            if not pipeline or '$documents' not in pipeline[0]:
                raise CommandError(115, 'mock-upstream supports collectionless aggregate only '
                                        'with a leading $documents stage')
            docs = self._run_pipeline(db, None, pipeline)
        else:
            raise CommandError(73, 'Invalid aggregate namespace')
        if pipeline and ('$out' in pipeline[-1] or '$merge' in pipeline[-1]):
            docs = []
        return self._cursor_reply(ns, docs, self._batch_size(incoming, cursor_opts))

    def _run_pipeline(self, db, coll, pipeline):
        """Run a pipeline over db.coll (or over $documents when coll is None).

        Stages mongomock lacks or gets wrong for us are done here; the rest go to mongomock's
        own stage handlers.
        """
        database = self._mm[db]
        if coll is None:
            docs = [dict(d) for d in pipeline[0]['$documents']]
            pipeline = pipeline[1:]
        else:
            docs = list(self._collection(db, coll).find())
        for stage in pipeline:
            op, opts = next(iter(stage.items()))
            if op == '$changeStream':
                raise CommandError(40573, 'The $changeStream stage is only supported on replica '
                                          'sets')
            elif op == '$unset':
                fields = [opts] if isinstance(opts, str) else list(opts)
                docs = mm_aggregate._PIPELINE_HANDLERS['$project'](
                    docs, database, {f: 0 for f in fields})
            elif op == '$replaceWith':
                docs = mm_aggregate._PIPELINE_HANDLERS['$replaceRoot'](
                    docs, database, {'newRoot': opts})
            elif op == '$sortByCount':
                docs = mm_aggregate._PIPELINE_HANDLERS['$group'](
                    docs, database, {'_id': opts, 'count': {'$sum': 1}})
                docs = sorted((_id_first(d) for d in docs), key=lambda d: -d['count'])
            elif op == '$unionWith':
                other = opts if isinstance(opts, str) else opts.get('coll')
                sub = [] if isinstance(opts, str) else list(opts.get('pipeline') or [])
                physical, prefix = self._resolve_view(db, other)
                docs = docs + self._run_pipeline(db, physical, prefix + sub)
            elif op == '$lookup' and 'pipeline' in opts:
                docs = self._lookup_with_pipeline(db, docs, opts)
            elif op == '$merge':
                self._merge_stage(db, docs, opts)
                docs = []
            elif op == '$out':
                target = opts if isinstance(opts, str) else opts.get('coll')
                target_db = db if isinstance(opts, str) else opts.get('db', db)
                self._mm[target_db].drop_collection(target)
                self._ensure_collection(target_db, target)
                if docs:
                    self._collection(target_db, target).insert_many(copy.deepcopy(docs))
                docs = []
            else:
                handler = mm_aggregate._PIPELINE_HANDLERS.get(op)
                if handler is None:
                    if op in mm_aggregate._PIPELINE_HANDLERS or op in _VALID_STAGES_NOT_MOCKED:
                        raise CommandError(115, "mock-upstream (mongomock) does not implement "
                                                "the aggregation stage '%s'" % op)
                    raise CommandError(40324, "Unrecognized pipeline stage name: '%s'" % op)
                docs = handler(docs, database, opts)
                if op in ('$group', '$bucket'):  # the server emits _id first
                    docs = [_id_first(d) for d in docs]
        return list(docs)

    def _lookup_with_pipeline(self, db, docs, opts):
        if opts.get('let'):
            raise CommandError(115, "mock-upstream does not implement $lookup with 'let'")
        physical, prefix = self._resolve_view(db, opts['from'])
        foreign = self._run_pipeline(db, physical, prefix + list(opts['pipeline']))
        out = []
        for doc in docs:
            doc = dict(doc)
            matches = foreign
            if 'localField' in opts:
                local = _get_dotted(doc, opts['localField'])
                local_vals = local if isinstance(local, list) else [local]
                matches = [f for f in foreign
                           if _get_dotted(f, opts['foreignField']) in local_vals]
            doc[opts['as']] = copy.deepcopy(matches)
            out.append(doc)
        return out

    def _merge_stage(self, db, docs, opts):
        if isinstance(opts, str):
            opts = {'into': opts}
        into = opts.get('into')
        target_db, target = (db, into) if isinstance(into, str) else (into.get('db', db),
                                                                        into.get('coll'))
        on = opts.get('on', '_id')
        on_fields = [on] if isinstance(on, str) else list(on)
        when_matched = opts.get('whenMatched', 'merge')
        when_not_matched = opts.get('whenNotMatched', 'insert')
        if not isinstance(when_matched, str):
            raise CommandError(115, 'mock-upstream does not implement $merge whenMatched '
                                    'pipelines')
        self._ensure_collection(target_db, target)
        collection = self._collection(target_db, target)
        for doc in docs:
            key = {f: _get_dotted(doc, f) for f in on_fields}
            existing = collection.find_one(key)
            if existing is None:
                if when_not_matched == 'insert':
                    collection.insert_one(copy.deepcopy(doc))
                elif when_not_matched == 'fail':
                    raise CommandError(13113, '$merge could not find a matching document in the '
                                              'target collection for at least one document in '
                                              'the source collection')
                continue
            if when_matched == 'replace':
                new_doc = copy.deepcopy(doc)
                new_doc['_id'] = existing['_id']
                collection.replace_one({'_id': existing['_id']}, new_doc)
            elif when_matched == 'merge':
                fields = {k: v for k, v in doc.items() if k != '_id'}
                if fields:
                    collection.update_one({'_id': existing['_id']}, {'$set': fields})
            elif when_matched == 'fail':
                raise CommandError(11000, dup_key_errmsg('%s.%s' % (target_db, target), '_id_',
                                                         {'_id': existing['_id']}))

    # ---- writes ----------------------------------------------------------------------------

    def _write_target(self, incoming):
        coll = self._coll_name(incoming)
        db = incoming.db
        if (db, coll) in self._views:
            raise CommandError(166, 'Namespace %s.%s is a view, not a collection' % (db, coll))
        return db, coll

    def _find_dup(self, db, coll, doc, exclude_id=None):
        """Which unique index would `doc` violate? -> (index name, keyPattern, keyValue)."""
        store = self._cstore(db, coll)
        collection = self._collection(db, coll)
        if '_id' in doc and exclude_id is None:
            if collection.find_one({'_id': doc['_id']}, projection={'_id': 1}) is not None:
                return '_id_', {'_id': 1}, {'_id': doc['_id']}
        for name, index in list(store.indexes.items()):
            if not index.get('unique'):
                continue
            pattern = dict(index['key'])
            value = {k: _get_dotted(doc, k) for k in pattern}
            if index.get('sparse') and all(v is None for v in value.values()):
                continue
            pfe = index.get('partialFilterExpression')
            if pfe and not mm_filtering.filter_applies(pfe, doc):
                continue
            query = dict(value)
            if pfe:
                query = {'$and': [pfe, query]}
            if '_id' in doc:
                query = {'$and': [query, {'_id': {'$ne': doc['_id']}}]}
            if collection.find_one(query, projection={'_id': 1}) is not None:
                return name, pattern, value
        return None

    def _dup_write_error(self, index, db, coll, dup):
        name, pattern, value = dup if dup else ('_id_', {'_id': 1}, {})
        return {'index': index, 'code': 11000,
                'errmsg': dup_key_errmsg('%s.%s' % (db, coll), name, value),
                'keyPattern': pattern, 'keyValue': value}

    @staticmethod
    def _generic_write_error(index, exc):
        if isinstance(exc, CommandError):
            return {'index': index, 'code': exc.code, 'errmsg': exc.errmsg}
        if isinstance(exc, mongomock.OperationFailure):
            text = str(exc)
            immutable = 'immutable' in text or '_id field cannot be changed' in text
            code = exc.code or (66 if immutable else 2)
            return {'index': index, 'code': code, 'errmsg': str(exc)}
        if isinstance(exc, NotImplementedError):
            return {'index': index, 'code': 115,
                    'errmsg': 'mock-upstream (mongomock) does not support this: %s' % exc}
        return {'index': index, 'code': 2, 'errmsg': '%s: %s' % (type(exc).__name__, exc)}

    def _insert_one(self, db, coll, doc):
        """Insert or raise; returns nothing. Dup keys raise _DupKey."""
        if '_id' not in doc:
            doc = dict(doc)
            doc['_id'] = ObjectId()
        elif isinstance(doc['_id'], list):
            raise CommandError(2, "can't use an array for _id")
        dup = self._find_dup(db, coll, doc)
        if dup is not None:
            raise _DupKey(dup)
        try:
            self._collection(db, coll).insert_one(doc)
        except mongomock.DuplicateKeyError:
            raise _DupKey(self._find_dup(db, coll, doc))

    def _cmd_insert(self, conn, incoming):
        db, coll = self._write_target(incoming)
        docs = incoming.field('documents')
        if not isinstance(docs, list):
            raise CommandError(14, "BSON field 'insert.documents' is missing or not an array")
        if len(docs) > MAX_WRITE_BATCH_SIZE:
            raise CommandError(2, 'Write batch sizes must be between 1 and %d. Got %d operations.'
                               % (MAX_WRITE_BATCH_SIZE, len(docs)))
        ordered = incoming.body.get('ordered', True)
        self._ensure_collection(db, coll)
        n = 0
        errors = []
        for index, doc in enumerate(docs):
            try:
                self._insert_one(db, coll, copy.deepcopy(doc))
                n += 1
            except _DupKey as dup:
                errors.append(self._dup_write_error(index, db, coll, dup.info))
            except Exception as exc:
                errors.append(self._generic_write_error(index, exc))
            if errors and ordered:
                break
        reply = {'n': n}
        if errors:
            reply['writeErrors'] = errors
        reply['ok'] = 1.0
        return reply

    def _scratch_apply(self, matched, q, u, upsert, replacement):
        """Apply an update to a copy of `matched` in a throwaway store; -> the new document."""
        scratch = mongomock.MongoClient()['s']['c']
        if matched is not None:
            scratch.insert_one(copy.deepcopy(matched))
            q = {'_id': matched['_id']}
        if replacement:
            scratch.replace_one(q, copy.deepcopy(u), upsert=upsert)
        else:
            scratch.update_one(q, copy.deepcopy(u), upsert=upsert)
        return scratch.find_one({})

    def _update_one_statement(self, db, coll, stmt):
        """-> (n, nModified, upserted id or None). Raises on error."""
        if not isinstance(stmt, dict):
            raise CommandError(14, 'update statement must be an object')
        q = stmt.get('q', {})
        u = stmt.get('u')
        multi = bool(stmt.get('multi', False))
        upsert = bool(stmt.get('upsert', False))
        if isinstance(u, list):
            raise CommandError(115, 'mock-upstream (mongomock) does not implement pipeline-style '
                                    'updates')
        if not isinstance(u, dict):
            raise CommandError(14, "BSON field 'update.updates.u' is the wrong type")
        if stmt.get('arrayFilters'):
            raise CommandError(115, 'mock-upstream (mongomock) does not implement arrayFilters')
        replacement = not (u and next(iter(u)).startswith('$'))
        if replacement and multi:
            raise CommandError(9, 'multi update is not supported for replacement-style update')
        collection = self._collection(db, coll)
        # mongomock can leave a document half-updated when a single-document update fails;
        # keep a copy to put back. (A failing multi-update keeps its earlier documents
        # updated, as on a real server.)
        touched = [] if multi else [d for d in [collection.find_one(q)] if d is not None]
        if replacement and '_id' in u and touched and touched[0]['_id'] != u['_id']:
            raise CommandError(66, "After applying the update, the (immutable) field '_id' was "
                                   "found to have been altered to _id: %s"
                               % _fmt_key_value(u['_id']))
        try:
            try:
                if replacement:
                    result = collection.replace_one(q, u, upsert=upsert)
                elif multi:
                    result = collection.update_many(q, u, upsert=upsert)
                else:
                    result = collection.update_one(q, u, upsert=upsert)
            except Exception:
                store = self._cstore(db, coll)
                for doc in touched:
                    key = doc['_id']
                    store[mm_helpers.hashdict(key) if isinstance(key, dict) else key] = doc
                raise
        except mongomock.DuplicateKeyError:
            matched = None if multi else collection.find_one(q)
            new_doc = None
            try:
                new_doc = self._scratch_apply(matched, q, u, upsert, replacement)
            except Exception:
                pass
            dup = None
            if new_doc is not None:
                dup = self._find_dup(db, coll, new_doc,
                                     exclude_id=matched['_id'] if matched else None)
                if dup is None and matched is None:
                    dup = self._find_dup(db, coll, new_doc)
            raise _DupKey(dup)
        raw = result.raw_result
        upserted = raw.get('upserted')
        if upserted is not None:
            return 1, 0, upserted
        return raw.get('n', 0), raw.get('nModified', 0), None

    def _cmd_update(self, conn, incoming):
        db, coll = self._write_target(incoming)
        updates = incoming.field('updates')
        if not isinstance(updates, list):
            raise CommandError(14, "BSON field 'update.updates' is missing or not an array")
        ordered = incoming.body.get('ordered', True)
        n = n_modified = 0
        upserted = []
        errors = []
        for index, stmt in enumerate(updates):
            try:
                matched, modified, upserted_id = self._update_one_statement(db, coll, stmt)
                n += matched
                n_modified += modified
                if upserted_id is not None:
                    self._ensure_collection(db, coll)
                    upserted.append({'index': index, '_id': upserted_id})
            except _DupKey as dup:
                errors.append(self._dup_write_error(index, db, coll, dup.info))
            except Exception as exc:
                errors.append(self._generic_write_error(index, exc))
            if errors and ordered:
                break
        reply = {'n': n, 'nModified': n_modified}
        if upserted:
            reply['upserted'] = upserted
        if errors:
            reply['writeErrors'] = errors
        reply['ok'] = 1.0
        return reply

    def _cmd_delete(self, conn, incoming):
        db, coll = self._write_target(incoming)
        deletes = incoming.field('deletes')
        if not isinstance(deletes, list):
            raise CommandError(14, "BSON field 'delete.deletes' is missing or not an array")
        ordered = incoming.body.get('ordered', True)
        collection = self._collection(db, coll)
        n = 0
        errors = []
        for index, stmt in enumerate(deletes):
            try:
                q = stmt.get('q', {})
                limit = stmt.get('limit', 0)
                if limit not in (0, 1):
                    raise CommandError(9, 'The limit field in delete objects must be 0 or 1. '
                                          'Got %s' % limit)
                if limit == 1:
                    n += collection.delete_one(q).deleted_count
                else:
                    n += collection.delete_many(q).deleted_count
            except Exception as exc:
                errors.append(self._generic_write_error(index, exc))
                if ordered:
                    break
        reply = {'n': n}
        if errors:
            reply['writeErrors'] = errors
        reply['ok'] = 1.0
        return reply

    def _cmd_find_and_modify(self, conn, incoming):
        db, coll = self._write_target(incoming)
        body = incoming.body
        query = body.get('query') or {}
        sort = _sort_list(body.get('sort'))
        fields = body.get('fields') or None
        remove = bool(body.get('remove', False))
        update = body.get('update')
        return_new = bool(body.get('new', False))
        upsert = bool(body.get('upsert', False))
        if remove and (update is not None or return_new or upsert):
            raise CommandError(9, 'Cannot specify both an update and remove=true')
        if not remove and update is None:
            raise CommandError(9, 'Either an update or remove=true must be specified')
        collection = self._collection(db, coll)
        matched = collection.find_one(query, sort=sort)
        if remove:
            if matched is None:
                return _ok(lastErrorObject={'n': 0}, value=None)
            value = collection.find_one({'_id': matched['_id']}, projection=fields)
            collection.delete_one({'_id': matched['_id']})
            return _ok(lastErrorObject={'n': 1}, value=value)
        stmt = {'q': {'_id': matched['_id']} if matched is not None else query, 'u': update,
                'upsert': upsert and matched is None, 'multi': False,
                'arrayFilters': body.get('arrayFilters')}
        before = None
        if matched is not None:
            before = collection.find_one({'_id': matched['_id']}, projection=fields)
        try:
            n, _modified, upserted_id = self._update_one_statement(db, coll, stmt)
        except _DupKey as dup:
            name, pattern, value = dup.info if dup.info else ('_id_', {'_id': 1}, {})
            raise CommandError(11000, dup_key_errmsg('%s.%s' % (db, coll), name, value),
                               keyPattern=pattern, keyValue=value)
        if upserted_id is not None:
            self._ensure_collection(db, coll)
            value = collection.find_one({'_id': upserted_id}, projection=fields) \
                if return_new else None
            return _ok(lastErrorObject={'n': 1, 'updatedExisting': False,
                                        'upserted': upserted_id}, value=value)
        if matched is None:
            return _ok(lastErrorObject={'n': 0, 'updatedExisting': False}, value=None)
        value = collection.find_one({'_id': matched['_id']}, projection=fields) \
            if return_new else before
        return _ok(lastErrorObject={'n': 1, 'updatedExisting': True}, value=value)

    def _cmd_bulk_write(self, conn, incoming):
        """The 8.0 bulkWrite command (only with --max-wire-version >= 25)."""
        if incoming.db != 'admin':
            raise CommandError(13, 'bulkWrite may only be run against the admin database.')
        ops = incoming.field('ops')
        ns_info = incoming.field('nsInfo')
        if not isinstance(ops, list) or not isinstance(ns_info, list):
            raise CommandError(9, "bulkWrite needs 'ops' and 'nsInfo' arrays")
        ordered = incoming.body.get('ordered', True)
        errors_only = bool(incoming.body.get('errorsOnly', False))
        results = []
        counts = {'nErrors': 0, 'nInserted': 0, 'nMatched': 0, 'nModified': 0, 'nUpserted': 0,
                  'nDeleted': 0}
        for idx, op in enumerate(ops):
            kind = next(iter(op))
            ns = 'admin.unknown'
            try:
                ns = ns_info[int(op[kind])]['ns']
                db, coll = ns.split('.', 1)
                if (db, coll) in self._views:
                    raise CommandError(166, 'Namespace %s is a view, not a collection' % ns)
                res = {'ok': 1.0, 'idx': idx}
                if kind == 'insert':
                    self._ensure_collection(db, coll)
                    self._insert_one(db, coll, copy.deepcopy(op['document']))
                    counts['nInserted'] += 1
                    res['n'] = 1
                elif kind == 'update':
                    stmt = {'q': op.get('filter', {}), 'u': op.get('updateMods'),
                            'multi': op.get('multi', False), 'upsert': op.get('upsert', False),
                            'arrayFilters': op.get('arrayFilters')}
                    n, modified, upserted_id = self._update_one_statement(db, coll, stmt)
                    res['n'] = n
                    res['nModified'] = modified
                    counts['nMatched'] += 0 if upserted_id is not None else n
                    counts['nModified'] += modified
                    if upserted_id is not None:
                        self._ensure_collection(db, coll)
                        counts['nUpserted'] += 1
                        res['upserted'] = {'_id': upserted_id}
                elif kind == 'delete':
                    collection = self._collection(db, coll)
                    filt = op.get('filter', {})
                    if op.get('multi'):
                        n = collection.delete_many(filt).deleted_count
                    else:
                        n = collection.delete_one(filt).deleted_count
                    counts['nDeleted'] += n
                    res['n'] = n
                else:
                    raise CommandError(9, 'unknown bulkWrite op %r' % kind)
                if not errors_only:
                    results.append(res)
            except Exception as exc:
                if isinstance(exc, _DupKey):
                    err = self._dup_write_error(idx, *ns.split('.', 1), exc.info)
                else:
                    err = self._generic_write_error(idx, exc)
                counts['nErrors'] += 1
                results.append({'ok': 0.0, 'idx': idx, 'code': err['code'],
                                'errmsg': err['errmsg']})
                if ordered:
                    break
        reply = _ok(cursor={'id': Int64(0), 'firstBatch': results,
                            'ns': 'admin.$cmd.bulkWrite'}, **counts)
        return reply

    # ---- catalog ---------------------------------------------------------------------------

    def _cmd_create(self, conn, incoming):
        db = incoming.db
        coll = self._coll_name(incoming)
        if self._exists(db, coll):
            raise CommandError(48, 'Collection %s.%s already exists.' % (db, coll))
        options = {k: v for k, v in incoming.body.items()
                   if k not in ('create', '$db', 'lsid', '$clusterTime', 'txnNumber',
                                'autocommit', 'startTransaction', '$readPreference',
                                'writeConcern', 'comment', 'maxTimeMS', 'apiVersion',
                                'apiStrict', 'apiDeprecationErrors', 'readConcern')}
        if 'viewOn' in options:
            if not isinstance(options['viewOn'], str):
                raise CommandError(14, "'viewOn' must be a string")
            self._views[(db, coll)] = {'viewOn': options['viewOn'],
                                       'pipeline': list(options.get('pipeline') or [])}
            self._meta(db, coll)['options'] = {'viewOn': options['viewOn'],
                                               'pipeline': list(options.get('pipeline') or [])}
            return _ok()
        self._cstore(db, coll).create()
        self._meta(db, coll)['options'] = options
        return _ok()

    def _drop_collection(self, db, coll):
        self._mm[db].drop_collection(coll)
        self._views.pop((db, coll), None)
        self._coll_meta.pop((db, coll), None)
        ns = '%s.%s' % (db, coll)
        for cid in [c for c, cur in self._cursors.items() if cur.ns == ns]:
            del self._cursors[cid]

    def _cmd_drop(self, conn, incoming):
        db = incoming.db
        coll = self._coll_name(incoming)
        if not self._exists(db, coll):
            raise CommandError(26, 'ns not found')
        n_indexes = 0 if (db, coll) in self._views else 1 + len(self._cstore(db, coll).indexes)
        self._drop_collection(db, coll)
        return _ok(nIndexesWas=n_indexes, ns='%s.%s' % (db, coll))

    def _db_collection_names(self, db):
        names = set(self._mm[db].list_collection_names())
        names.update(c for (d, c) in self._views if d == db)
        return sorted(names)

    def _cmd_drop_database(self, conn, incoming):
        db = incoming.db
        for coll in self._db_collection_names(db):
            self._drop_collection(db, coll)
        return _ok(dropped=db)

    def _collection_entry(self, db, coll):
        meta = self._meta(db, coll)
        if (db, coll) in self._views:
            return {'name': coll, 'type': 'view', 'options': copy.deepcopy(meta['options']),
                    'info': {'readOnly': True}}
        return {'name': coll, 'type': 'collection', 'options': copy.deepcopy(meta['options']),
                'info': {'readOnly': False, 'uuid': meta['uuid']},
                'idIndex': {'v': 2, 'key': {'_id': 1}, 'name': '_id_'}}

    def _cmd_list_collections(self, conn, incoming):
        db = incoming.db
        body = incoming.body
        filt = body.get('filter') or {}
        entries = [self._collection_entry(db, c) for c in self._db_collection_names(db)]
        if filt:
            entries = [e for e in entries if mm_filtering.filter_applies(filt, e)]
        if body.get('nameOnly'):
            entries = [{'name': e['name'], 'type': e['type']} for e in entries]
        cursor_opts = body.get('cursor') or {}
        return self._cursor_reply('%s.$cmd.listCollections' % db, entries,
                                  self._batch_size(incoming, cursor_opts))

    def _db_size(self, db):
        size = 0
        for coll in self._mm[db].list_collection_names():
            for doc in self._cstore(db, coll).documents:
                size += _bson_size(doc)
        return size

    def _cmd_list_databases(self, conn, incoming):
        body = incoming.body
        names = set(self._mm.list_database_names())
        names.update(d for (d, _c) in self._views)
        entries = []
        for name, size in (('admin', 40960), ('config', 12288), ('local', 40960)):
            entries.append({'name': name, 'sizeOnDisk': size, 'empty': False})
        for name in sorted(names - {'admin', 'config', 'local'}):
            entries.append({'name': name, 'sizeOnDisk': 4096 + self._db_size(name),
                            'empty': False})
        filt = body.get('filter') or {}
        if filt:
            entries = [e for e in entries if mm_filtering.filter_applies(filt, e)]
        if body.get('nameOnly'):
            return _ok(databases=[{'name': e['name']} for e in entries])
        total = sum(e['sizeOnDisk'] for e in entries)
        return _ok(databases=entries, totalSize=total, totalSizeMb=total // (1024 * 1024))

    def _index_specs(self, db, coll):
        """listIndexes documents for an existing collection."""
        store = self._cstore(db, coll)
        meta = self._meta(db, coll)
        out = [{'v': 2, 'key': {'_id': 1}, 'name': '_id_'}]
        for name, info in store.indexes.items():
            spec = meta['indexSpecs'].get(name)
            if spec is None:
                spec = {'v': 2, 'key': dict(info['key']), 'name': name}
                for opt in ('unique', 'sparse', 'expireAfterSeconds', 'partialFilterExpression'):
                    if opt in info:
                        spec[opt] = info[opt]
            out.append(copy.deepcopy(spec))
        return out

    def _cmd_create_indexes(self, conn, incoming):
        db, coll = self._write_target(incoming)
        indexes = incoming.body.get('indexes')
        if not isinstance(indexes, list) or not indexes:
            raise CommandError(2, 'Must specify at least one index to create')
        created_automatically = not self._exists(db, coll)
        self._ensure_collection(db, coll)
        store = self._cstore(db, coll)
        meta = self._meta(db, coll)
        before = 1 + len(store.indexes)
        collection = self._collection(db, coll)
        for spec in indexes:
            key = spec.get('key')
            if not isinstance(key, dict) or not key:
                raise CommandError(67, "Error in specification %s :: caused by :: The 'key' field "
                                       "is a required property of an index specification"
                                   % json_util.dumps(spec))
            key_list = list(key.items())
            name = spec.get('name') or mm_helpers.gen_index_name(key_list)
            if name == '_id_' or key_list == [('_id', 1)]:
                continue
            existing = self._index_specs(db, coll)[1:]
            same_name = next((s for s in existing if s['name'] == name), None)
            same_key = next((s for s in existing if list(s['key'].items()) == key_list), None)
            options = {k: v for k, v in spec.items() if k not in ('key', 'name', 'v', 'ns')}
            if same_name is not None:
                if list(same_name['key'].items()) != key_list:
                    raise CommandError(86, 'An existing index has the same name as the requested '
                                           'index. When index names are not specified, they are '
                                           'auto generated and can cause conflicts. Please refer '
                                           'to our documentation. Requested index: %s, existing '
                                           'index: %s' % (json_util.dumps(spec),
                                                          json_util.dumps(same_name)))
                old_opts = {k: v for k, v in same_name.items() if k not in ('key', 'name', 'v')}
                if old_opts != options:
                    raise CommandError(85, 'An equivalent index already exists with the same name '
                                           'but different options. Requested index: %s, existing '
                                           'index: %s' % (json_util.dumps(spec),
                                                          json_util.dumps(same_name)))
                continue
            if same_key is not None:
                raise CommandError(85, 'Index already exists with a different name: %s'
                                   % same_key['name'])
            kwargs = {'name': name}
            for opt in ('unique', 'sparse', 'expireAfterSeconds', 'partialFilterExpression'):
                if opt in spec:
                    kwargs[opt] = spec[opt]
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                          for _k, v in key_list)
            try:
                if numeric:
                    collection.create_index(key_list, **kwargs)
                else:  # text/2dsphere/hashed: catalog only, no semantics
                    store.create_index(name, {'key': key_list})
            except mongomock.DuplicateKeyError:
                raise CommandError(11000, 'Index build failed: E11000 duplicate key error '
                                          'collection: %s.%s index: %s' % (db, coll, name))
            full = {'v': 2, 'key': dict(key), 'name': name}
            full.update(options)
            meta['indexSpecs'][name] = full
        after = 1 + len(store.indexes)
        reply = {'numIndexesBefore': before, 'numIndexesAfter': after,
                 'createdCollectionAutomatically': created_automatically}
        if before == after:
            reply['note'] = 'all indexes already exist'
        reply['ok'] = 1.0
        return reply

    def _cmd_list_indexes(self, conn, incoming):
        db = incoming.db
        coll = self._coll_name(incoming)
        if (db, coll) in self._views:
            raise CommandError(166, 'Namespace %s.%s is a view, not a collection' % (db, coll))
        if not self._exists(db, coll):
            raise CommandError(26, 'ns does not exist: %s.%s' % (db, coll))
        return self._cursor_reply('%s.$cmd.listIndexes.%s' % (db, coll),
                                  self._index_specs(db, coll),
                                  self._batch_size(incoming, incoming.body.get('cursor') or {}))

    def _cmd_drop_indexes(self, conn, incoming):
        db, coll = self._write_target(incoming)
        if not self._exists(db, coll):
            raise CommandError(26, 'ns not found %s.%s' % (db, coll))
        store = self._cstore(db, coll)
        meta = self._meta(db, coll)
        before = 1 + len(store.indexes)
        which = incoming.body.get('index')
        specs = self._index_specs(db, coll)
        if which == '*':
            names = [s['name'] for s in specs[1:]]
        elif isinstance(which, str):
            names = [which]
        elif isinstance(which, list):
            names = list(which)
        elif isinstance(which, dict):
            match = next((s for s in specs if list(s['key'].items()) == list(which.items())),
                         None)
            if match is None:
                raise CommandError(27, "can't find index with key: %s" % json_util.dumps(which))
            names = [match['name']]
        else:
            raise CommandError(14, "BSON field 'dropIndexes.index' is the wrong type")
        for name in names:
            if name == '_id_':
                raise CommandError(72, 'cannot drop _id index')
            if name not in store.indexes:
                raise CommandError(27, 'index not found with name [%s]' % name)
        for name in names:
            store.drop_index(name)
            meta['indexSpecs'].pop(name, None)
        return _ok(nIndexesWas=before)

    def _cmd_db_stats(self, conn, incoming):
        db = incoming.db
        colls = self._mm[db].list_collection_names()
        objects = sum(len(self._cstore(db, c)) for c in colls)
        size = self._db_size(db)
        indexes = sum(1 + len(self._cstore(db, c).indexes) for c in colls)
        views = len([1 for (d, _c) in self._views if d == db])
        return _ok(db=db, collections=len(colls), views=views, objects=objects,
                   avgObjSize=float(size) / objects if objects else 0.0, dataSize=float(size),
                   storageSize=float(size + 4096 * len(colls)), indexes=indexes,
                   indexSize=float(4096 * indexes), totalSize=float(size + 4096 * (indexes +
                                                                                   len(colls))),
                   scaleFactor=1.0, fsUsedSize=0.0, fsTotalSize=0.0)

    def _cmd_coll_stats(self, conn, incoming):
        db = incoming.db
        coll = self._coll_name(incoming)
        if not self._exists(db, coll) or (db, coll) in self._views:
            raise CommandError(26, 'Collection [%s.%s] not found.' % (db, coll))
        store = self._cstore(db, coll)
        docs = list(store.documents)
        size = sum(_bson_size(d) for d in docs)
        names = [s['name'] for s in self._index_specs(db, coll)]
        return _ok(ns='%s.%s' % (db, coll), size=size, count=len(docs),
                   avgObjSize=size // len(docs) if docs else 0, storageSize=size + 4096,
                   nindexes=len(names), totalIndexSize=4096 * len(names),
                   indexSizes={n: 4096 for n in names}, capped=False)

    def _cmd_rename_collection(self, conn, incoming):
        if incoming.db != 'admin':
            raise CommandError(13, 'renameCollection may only be run against the admin database.')
        source = incoming.body.get('renameCollection')
        target = incoming.body.get('to')
        if not isinstance(source, str) or not isinstance(target, str) or '.' not in source \
                or '.' not in target:
            raise CommandError(73, 'Invalid source or target namespace')
        sdb, scoll = source.split('.', 1)
        tdb, tcoll = target.split('.', 1)
        if not self._exists(sdb, scoll):
            raise CommandError(26, 'Source collection %s does not exist' % source)
        if self._exists(tdb, tcoll):
            if not incoming.body.get('dropTarget'):
                raise CommandError(48, 'target namespace exists')
            self._drop_collection(tdb, tcoll)
        if sdb == tdb and (sdb, scoll) not in self._views:
            self._mm[sdb].rename_collection(scoll, tcoll)
            meta = self._coll_meta.pop((sdb, scoll), None)
            if meta is not None:
                self._coll_meta[(tdb, tcoll)] = meta
        else:
            docs = list(self._collection(sdb, scoll).find())
            self._ensure_collection(tdb, tcoll)
            if docs:
                self._collection(tdb, tcoll).insert_many(docs)
            self._drop_collection(sdb, scoll)
        return _ok()

    def _cmd_coll_mod(self, conn, incoming):
        db = incoming.db
        coll = self._coll_name(incoming)
        if not self._exists(db, coll):
            raise CommandError(26, 'ns does not exist')
        meta = self._meta(db, coll)
        for key in ('validator', 'validationLevel', 'validationAction'):
            if key in incoming.body:
                meta['options'][key] = incoming.body[key]
        if (db, coll) in self._views and 'viewOn' in incoming.body:
            view = {'viewOn': incoming.body['viewOn'],
                    'pipeline': list(incoming.body.get('pipeline') or [])}
            self._views[(db, coll)] = view
            meta['options'] = dict(view)
        return _ok()

    def _cmd_validate(self, conn, incoming):
        db = incoming.db
        coll = self._coll_name(incoming)
        if not self._exists(db, coll):
            raise CommandError(26, 'Collection \'%s.%s\' does not exist to validate.' % (db, coll))
        n = len(self._cstore(db, coll))
        return _ok(ns='%s.%s' % (db, coll), nInvalidDocuments=0, nrecords=n,
                   nIndexes=len(self._index_specs(db, coll)), valid=True, repaired=False,
                   warnings=[], errors=[])

    def _explain_doc(self, db, coll, details):
        return _ok(explainVersion='1',
                   queryPlanner={'namespace': '%s.%s' % (db, coll), 'indexFilterSet': False,
                                 'parsedQuery': details.get('filter', {}),
                                 'winningPlan': {'stage': 'COLLSCAN'}, 'rejectedPlans': []},
                   command=details,
                   serverInfo={'host': 'mock-upstream-%s' % self.name, 'port': self.port,
                               'version': self.version})

    def _cmd_explain(self, conn, incoming):
        inner = incoming.body.get('explain')
        if not isinstance(inner, dict) or not inner:
            raise CommandError(14, "'explain' must be an object")
        target = inner.get(next(iter(inner)))
        coll = target if isinstance(target, str) else '$cmd'
        details = dict(inner)
        details['$db'] = incoming.db
        return self._explain_doc(incoming.db, coll, details)


class _DupKey(Exception):
    def __init__(self, info):
        super().__init__('duplicate key')
        self.info = info


class _FakeRequest(object):
    """Stands in for a mockupdb request when replying to a legacy opcode."""

    def __init__(self, request_id):
        self.request_id = request_id


# --------------------------------------------------------------------------------------------
# Compression and socket helpers
# --------------------------------------------------------------------------------------------

_COMPRESSOR_NAMES = {COMPRESSOR_NOOP: 'noop', COMPRESSOR_SNAPPY: 'snappy',
                     COMPRESSOR_ZLIB: 'zlib', COMPRESSOR_ZSTD: 'zstd'}


def _available_compressors():
    names = ['noop', 'zlib']
    try:  # optional modules; absent on the CI machine
        import snappy  # noqa: F401
        names.append('snappy')
    except ImportError:
        pass
    try:
        import zstandard  # noqa: F401
        names.append('zstd')
    except ImportError:
        pass
    return names


def _decompress(payload):
    if len(payload) < 9:
        raise ProtocolError('OP_COMPRESSED too short')
    original_opcode, size, compressor = struct.unpack_from('<iiB', payload, 0)
    data = payload[9:]
    if compressor == COMPRESSOR_NOOP:
        out = bytes(data)
    elif compressor == COMPRESSOR_ZLIB:
        out = zlib.decompress(data)
    elif compressor == COMPRESSOR_SNAPPY:
        import snappy
        out = snappy.uncompress(data)
    elif compressor == COMPRESSOR_ZSTD:
        import zstandard
        out = zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
    else:
        raise ProtocolError('unknown compressor id %d' % compressor)
    if len(out) != size:
        raise ProtocolError('OP_COMPRESSED uncompressedSize %d but got %d' % (size, len(out)))
    return original_opcode, out, compressor


def _compress(raw, compressor):
    length, request_id, response_to, opcode = struct.unpack_from('<iiii', raw, 0)
    body = bytes(raw[16:])
    if compressor == COMPRESSOR_ZLIB:
        data = zlib.compress(body)
    elif compressor == COMPRESSOR_SNAPPY:
        import snappy
        data = snappy.compress(body)
    elif compressor == COMPRESSOR_ZSTD:
        import zstandard
        data = zstandard.ZstdCompressor().compress(body)
    else:
        data = body
    out = struct.pack('<iiiiiiB', 16 + 9 + len(data), request_id, response_to, OP_COMPRESSED,
                      opcode, len(body), compressor)
    return out + data


def _recv_exact(sock, n, allow_eof=False):
    chunks = []
    remaining = n
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            if allow_eof and remaining == n:
                return None
            raise ConnectionResetError('peer closed mid-frame')
        chunks.append(chunk)
        remaining -= len(chunk)
    return b''.join(chunks)


class _WireServer(mockupdb.MockupDB):
    """MockupDB's listener, with our own accept and per-connection loops.

    MockupDB serialises every connection behind one lock and queues requests for a test to
    answer; here every connection thread answers by itself, so a delayed or hung request on
    one connection never blocks another.
    """

    def __init__(self, upstream, host, port):
        super().__init__(port=port, verbose=False, request_timeout=int(1e6))
        self._address = (host, port)
        self._upstream = upstream
        self._tls_context = None
        if upstream._tls_cert_key_file:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(upstream._tls_cert_key_file)
            self._tls_context = ctx

    def _accept_loop(self):
        listener = self._listening_sock
        listener.setblocking(False)
        while not self._stopped:
            try:
                readable, _, _ = select.select([listener], [], [], 0.2)
            except (OSError, ValueError):
                break
            if not readable:
                continue
            try:
                client, client_addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                if self._stopped:
                    break
                continue
            client.setblocking(True)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._server_loop, args=(client, client_addr),
                                      name='mock-upstream-conn', daemon=True)
            self._server_threads[thread] = None
            self._server_socks[client] = None
            thread.start()

    def _server_loop(self, client, client_addr):
        upstream = self._upstream
        sock = client
        if self._tls_context is not None:
            try:
                sock = self._tls_context.wrap_socket(client, server_side=True)
            except (OSError, ssl.SSLError):
                client.close()
                return
        conn = upstream._open_connection(sock, client_addr)
        try:
            upstream._serve(conn)
        except ProtocolError as exc:
            with upstream._rec_lock:
                upstream._stats['protocolErrors'] += 1
            upstream._log('connection %d: protocol error: %s' % (conn.id, exc))
        except (OSError, ssl.SSLError):
            pass
        except Exception:  # a garbage frame must only ever cost its own connection
            with upstream._rec_lock:
                upstream._stats['protocolErrors'] += 1
            if not upstream._stop_event.is_set():
                traceback.print_exc()
        finally:
            upstream._close_connection(conn)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def _parse_users(values):
    users = {}
    for value in values or []:
        for item in value.split(','):
            if not item:
                continue
            if ':' not in item:
                raise SystemExit('--user expects user:password, got %r' % item)
            user, password = item.split(':', 1)
            users[user] = password
    return users


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='MongoDB-compatible test upstream (mockupdb wire + mongomock semantics).')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=0, help='0 = chosen by the OS')
    parser.add_argument('--port-file', help='write the bound port number here')
    parser.add_argument('--name', default='mock')
    parser.add_argument('--max-wire-version', type=int, default=21)
    parser.add_argument('--min-wire-version', type=int, default=0)
    parser.add_argument('--record-file', help='append every recorded command as a JSON line')
    parser.add_argument('--user', action='append', metavar='USER:PASSWORD',
                        help='require SCRAM auth (admin db); repeatable or comma-separated')
    parser.add_argument('--compressors', default='zlib',
                        help="comma list offered in hello when a client asks "
                             "(noop,zlib[,snappy,zstd if installed]); '' = none")
    parser.add_argument('--tls-cert-key-file', help='PEM with certificate and key: serve TLS')
    parser.add_argument('--verbose', action='store_true', help='log connections to stderr')
    parser.add_argument('--cluster-time-key', type=int,
                        help='answer like a replica set: operationTime and $clusterTime signed '
                             'with this keyId; a $clusterTime with another keyId is refused')
    parser.add_argument('--no-sessions', action='store_true',
                        help='like a server without logical sessions: hello has no '
                             'logicalSessionTimeoutMinutes')
    parser.add_argument('--role', choices=ROLES, help='pose as a replica-set member or a mongos '
                        '(also the mockSetRole control command)')
    parser.add_argument('--set-name', help='replica-set name (--role primary/secondary)')
    parser.add_argument('--hosts', help='comma list of the set members as host:port')
    parser.add_argument('--me', help="this member's host:port (default: the bound address)")
    parser.add_argument('--primary', help='the primary a secondary reports (host:port)')
    args = parser.parse_args(argv)

    upstream = MockUpstream(
        name=args.name, host=args.host, port=args.port,
        max_wire_version=args.max_wire_version, min_wire_version=args.min_wire_version,
        record_file=args.record_file, users=_parse_users(args.user),
        compressors=[c for c in args.compressors.split(',') if c],
        tls_cert_key_file=args.tls_cert_key_file, verbose=args.verbose,
        cluster_time_key=args.cluster_time_key, sessions=not args.no_sessions,
        role=dict(role=args.role, set_name=args.set_name,
                  hosts=[h for h in (args.hosts or '').split(',') if h], me=args.me,
                  primary=args.primary) if args.role else None)

    done = threading.Event()

    def on_signal(_signum, _frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    upstream.start()
    if args.port_file:
        tmp = '%s.tmp.%d' % (args.port_file, os.getpid())
        with open(tmp, 'w') as fh:
            fh.write('%d\n' % upstream.port)
        os.replace(tmp, args.port_file)
    sys.stdout.write('mock-upstream %s listening on %s:%d\n' % (args.name, args.host,
                                                                upstream.port))
    sys.stdout.flush()
    while not done.wait(0.5):
        pass
    upstream.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
