"""End-to-end harness: the real mongogate binary between real clients and mock upstreams.

What it promises
  * Every process listens on a port the OS chose (``--port 0`` / ``--listen 127.0.0.1:0``)
    and reports it through a port file; nothing is hard-coded.
  * Every wait is bounded. A proxy that never becomes ready, never closes a socket or never
    exits on SIGTERM fails the test within seconds instead of hanging CI.
  * The proxy's stderr goes to a file that tests can assert on. At teardown the proxy gets
    SIGTERM and must exit 0; an AddressSanitizer / LeakSanitizer / UBSan report anywhere in
    its stderr fails the test module.
  * Upstreams are tests/upstream/mock_upstream.py run as subprocesses. The harness talks to
    them with a minimal OP_MSG client (``WireConnection``) that never sends hello, so the
    upstream's record of hellos contains only what mongogate sent.

Selecting the binary
  ``MONGOGATE_BIN`` (ctest sets it), else ``--mongogate-bin PATH`` on the command line, else
  ``<repo>/build/proxy/mongogate`` when it exists.

Development switch
  ``MONGOGATE_E2E_DIRECT=1`` skips the proxy and points clients straight at the first mock
  upstream. It exists only to check the client-side code (pymongo, Node, mongosh) against
  the mock; tests that are about mongogate itself skip in that mode. Never set it in CI.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import bson
from bson.codec_options import CodecOptions
from pymongo import MongoClient
from pymongo.errors import PyMongoError

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent
UPSTREAM_SCRIPT = REPO_ROOT / "tests" / "upstream" / "mock_upstream.py"
NODE_DIR = E2E_DIR / "node"
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable

# Bounded waits (seconds). Sanitizer builds start and run slower, so these are generous
# but still far below the ctest TIMEOUT.
READY_TIMEOUT = float(os.environ.get("MONGOGATE_E2E_READY_TIMEOUT", "30"))
STOP_TIMEOUT = float(os.environ.get("MONGOGATE_E2E_STOP_TIMEOUT", "20"))
SOCKET_TIMEOUT = 10.0
PER_TEST_WATCHDOG = float(os.environ.get("MONGOGATE_E2E_TEST_WATCHDOG", "120"))

# Text in a process's stderr that means a sanitizer found a bug.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "ERROR: ThreadSanitizer",
    "WARNING: ThreadSanitizer",
)

OP_REPLY = 1
OP_INSERT = 2002
OP_QUERY = 2004
OP_COMPRESSED = 2012
OP_MSG = 2013

# The main database named in the upstream URI given to mongogate. Tests use other
# databases, which SPEC §3 rule 4 forwards unchanged.
MAIN_DB = "e2e_main"

DIRECT_MODE = os.environ.get("MONGOGATE_E2E_DIRECT", "") not in ("", "0")

_CODEC = CodecOptions(document_class=dict, tz_aware=False)


# --------------------------------------------------------------------------------------
# Child processes die with the test process (a ctest timeout must not leave orphans).

def _die_with_parent(sig: int) -> Callable[[], None]:
    def preexec() -> None:
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, sig)
        except OSError:
            pass
    return preexec


def _wait_for_port_file(path: Path, proc: subprocess.Popen, what: str, log_path: Path,
                        timeout: float) -> int:
    """Wait until ``path`` holds "<port>\\n"; fail fast if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited with code {proc.returncode} before it was ready; "
                f"log {log_path}:\n{tail(log_path)}")
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        if text.endswith("\n") and text.strip().isdigit():
            port = int(text.strip())
            if 0 < port < 65536:
                return port
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not write its port file {path} within {timeout}s; "
                       f"log {log_path}:\n{tail(log_path)}")


def tail(path: Path, limit: int = 6000) -> str:
    try:
        data = path.read_text(errors="replace")
    except FileNotFoundError:
        return "<no log>"
    return data[-limit:]


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; raise AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------
# A minimal wire client: frames built with struct + bson, no handshake ever.

_request_ids = itertools.count(1000)


def next_request_id() -> int:
    return next(_request_ids)


def frame(opcode: int, payload: bytes, request_id: Optional[int] = None,
          response_to: int = 0, length: Optional[int] = None) -> bytes:
    """A wire message: 16-byte header + payload. ``length`` overrides the header's length."""
    rid = next_request_id() if request_id is None else request_id
    total = 16 + len(payload) if length is None else length
    return struct.pack("<iiii", total, rid, response_to, opcode) + payload


def op_msg_payload(doc: Optional[dict] = None, flags: int = 0, body_bytes: Optional[bytes] = None,
                   sequences: Iterable[tuple[str, list]] = ()) -> bytes:
    """OP_MSG payload: flagBits, one kind-0 section, then kind-1 document sequences."""
    body = body_bytes if body_bytes is not None else bson.encode(doc)
    out = struct.pack("<I", flags) + b"\x00" + body
    for identifier, docs in sequences:
        content = identifier.encode() + b"\x00" + b"".join(bson.encode(d) for d in docs)
        out += b"\x01" + struct.pack("<i", 4 + len(content)) + content
    return out


def op_msg(doc: dict, request_id: Optional[int] = None, flags: int = 0,
           sequences: Iterable[tuple[str, list]] = ()) -> bytes:
    return frame(OP_MSG, op_msg_payload(doc, flags, sequences=sequences), request_id)


def op_query(full_collection_name: str, query: dict, number_to_return: int = -1,
             flags: int = 0, request_id: Optional[int] = None) -> bytes:
    payload = (struct.pack("<i", flags) + full_collection_name.encode() + b"\x00"
               + struct.pack("<ii", 0, number_to_return) + bson.encode(query))
    return frame(OP_QUERY, payload, request_id)


@dataclass
class Reply:
    opcode: int
    request_id: int
    response_to: int
    flags: int
    docs: list[dict] = field(default_factory=list)

    @property
    def doc(self) -> dict:
        return self.docs[0]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"peer closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def parse_reply(data: bytes) -> Reply:
    length, request_id, response_to, opcode = struct.unpack_from("<iiii", data, 0)
    if opcode == OP_MSG:
        flags = struct.unpack_from("<I", data, 16)[0]
        end = length - (4 if flags & 1 else 0)
        pos = 20
        docs: list[dict] = []
        while pos < end:
            kind = data[pos]
            pos += 1
            if kind == 0:
                size = struct.unpack_from("<i", data, pos)[0]
                docs.insert(0, bson.decode(data[pos:pos + size], _CODEC))
                pos += size
            elif kind == 1:
                size = struct.unpack_from("<i", data, pos)[0]
                pos += size  # replies from a server carry no sequences we need
            else:
                raise ValueError(f"unknown OP_MSG section kind {kind}")
        return Reply(opcode, request_id, response_to, flags, docs)
    if opcode == OP_REPLY:
        flags, _cursor_id, _start, number = struct.unpack_from("<iqii", data, 16)
        docs = bson.decode_all(data[36:length], _CODEC)
        if len(docs) != number:
            raise ValueError(f"OP_REPLY says {number} documents, carries {len(docs)}")
        return Reply(opcode, request_id, response_to, flags, docs)
    raise ValueError(f"unexpected reply opcode {opcode}")


class WireConnection:
    """One raw TCP connection speaking just enough of the wire protocol for tests."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = SOCKET_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __enter__(self) -> "WireConnection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_message(self, timeout: Optional[float] = None) -> Reply:
        if timeout is not None:
            self.sock.settimeout(timeout)
        header = _recv_exact(self.sock, 16)
        length = struct.unpack_from("<i", header)[0]
        if length < 16 or length > 64 * 1024 * 1024:
            raise ValueError(f"reply with impossible length {length}")
        return parse_reply(header + _recv_exact(self.sock, length - 16))

    def command(self, doc: dict, db: str = "admin", timeout: Optional[float] = None) -> dict:
        """Send an OP_MSG command (``$db`` added) and return the reply body."""
        body = dict(doc)
        body.setdefault("$db", db)
        rid = next_request_id()
        self.send(op_msg(body, rid))
        reply = self.recv_message(timeout)
        if reply.response_to != rid:
            raise AssertionError(f"reply responseTo {reply.response_to} != requestID {rid}")
        return reply.doc

    def wait_closed(self, timeout: float) -> bool:
        """True when the peer closes the connection (EOF or reset) within ``timeout``.

        Bytes that arrive first (an error reply, say) are read and discarded.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True


# --------------------------------------------------------------------------------------
# Mock upstreams.

class Upstream:
    """tests/upstream/mock_upstream.py in a subprocess, controlled over the wire."""

    def __init__(self, name: str, workdir: Path, max_wire_version: Optional[int] = None,
                 extra_args: Iterable[str] = ()):
        self.name = name
        self.workdir = workdir
        self.max_wire_version = max_wire_version
        self.extra_args = list(extra_args)
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.log_path = workdir / f"upstream-{name}.log"
        self._control: Optional[WireConnection] = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> "Upstream":
        """Start on ``port`` (0: one the OS chooses)."""
        if not UPSTREAM_SCRIPT.exists():
            raise RuntimeError(f"{UPSTREAM_SCRIPT} does not exist")
        port_file = self.workdir / f"upstream-{self.name}.port"
        with contextlib.suppress(FileNotFoundError):
            port_file.unlink()
        args = [PYTHON, str(UPSTREAM_SCRIPT), "--port", str(port), "--port-file", str(port_file),
                "--name", self.name]
        if self.max_wire_version is not None:
            args += ["--max-wire-version", str(self.max_wire_version)]
        args += self.extra_args
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=str(self.workdir),
                                         preexec_fn=_die_with_parent(signal.SIGKILL))
        self.port = _wait_for_port_file(port_file, self.proc, f"mock upstream {self.name}",
                                        self.log_path, READY_TIMEOUT)
        return self

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def restart(self) -> "Upstream":
        """Stop, then start again on the same port (an upstream that went away and came back)."""
        port = self.port
        self.stop()
        return self.start(port)

    # -- control plane (direct connection, never through the proxy) --------------------

    def command(self, doc: dict, db: str = "admin") -> dict:
        """A command sent straight to this upstream on a private raw connection."""
        for attempt in range(2):
            if self._control is None:
                self._control = WireConnection(self.port)
            try:
                return self._control.command(doc, db)
            except (OSError, ConnectionError):
                self._control.close()
                self._control = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _checked(self, doc: dict) -> dict:
        reply = self.command(doc)
        if not reply.get("ok"):
            raise AssertionError(f"upstream {self.name} refused {doc}: {reply}")
        return reply

    def recorded(self) -> list[dict]:
        return self._checked({"mockRecorded": 1})["records"]

    def clear_recorded(self) -> None:
        self._checked({"mockClearRecorded": 1})

    def add_fault(self, command: str, action: str, **options: Any) -> None:
        self._checked({"mockFault": command, "action": action, **options})

    def clear_faults(self) -> None:
        self._checked({"mockClearFaults": 1})

    def stats(self) -> dict:
        return self._checked({"mockStats": 1})

    def set_role(self, role: str, **options: Any) -> None:
        """Pose as a replica-set member or a mongos (see mock_upstream.py's mockSetRole)."""
        self._checked({"mockSetRole": role, **options})

    def find_all(self, db: str, collection: str, filter: Optional[dict] = None) -> list[dict]:
        """Every matching document, read straight from the upstream."""
        reply = self._checked({"find": collection, "filter": filter or {}, "batchSize": 100000,
                               "$db": db})
        docs = list(reply["cursor"]["firstBatch"])
        cursor_id = reply["cursor"]["id"]
        while cursor_id:
            reply = self._checked({"getMore": cursor_id, "collection": collection,
                                   "batchSize": 100000, "$db": db})
            docs += reply["cursor"]["nextBatch"]
            cursor_id = reply["cursor"]["id"]
        return docs

    def collection_names(self, db: str) -> list[str]:
        reply = self._checked({"listCollections": 1, "nameOnly": True, "$db": db})
        return sorted(c["name"] for c in reply["cursor"]["firstBatch"])

    def database_names(self) -> list[str]:
        """listDatabases straight from this upstream (includes admin/config/local)."""
        reply = self._checked({"listDatabases": 1, "nameOnly": True, "$db": "admin"})
        return sorted(d["name"] for d in reply["databases"])


class InProcessUpstream(Upstream):
    """tests/upstream/mock_upstream.py's MockUpstream inside this process.

    Same control API as ``Upstream`` (over the wire, never through the proxy), plus
    ``mock``, the MockUpstream object, for hooks a subprocess cannot offer (for example a
    deterministic cursor-id generator). Its connection threads share the GIL with the test,
    so keep it for tests that are not about throughput.
    """

    def __init__(self, name: str, workdir: Path, max_wire_version: Optional[int] = None,
                 **mock_options: Any):
        super().__init__(name, workdir, max_wire_version)
        self.mock_options = mock_options
        self.mock: Any = None

    def start(self) -> "InProcessUpstream":
        module = import_mock_upstream()
        options = dict(self.mock_options)
        if self.max_wire_version is not None:
            options["max_wire_version"] = self.max_wire_version
        self.mock = module.MockUpstream(name=self.name, host="127.0.0.1", port=0, **options)
        self.mock.start()
        self.port = self.mock.port
        return self

    def stop(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.mock is not None:
            self.mock.stop()
            self.mock = None


def import_mock_upstream() -> Any:
    """The tests/upstream/mock_upstream module (needs Debian's python3-mockupdb/mongomock)."""
    directory = str(UPSTREAM_SCRIPT.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    import mock_upstream  # noqa: E402  (path set just above)
    return mock_upstream


# --------------------------------------------------------------------------------------
# Records: what an upstream received.

def record_command_name(record: dict) -> str:
    name = record.get("command")
    if isinstance(name, str) and name:
        return name
    body = record.get("body") or {}
    return next(iter(body), "") if isinstance(body, dict) else ""


def is_hello(record: dict) -> bool:
    return record_command_name(record).lower() in ("hello", "ismaster")


def hello_driver_names(records: list[dict]) -> list[str]:
    """client.driver.name of every recorded hello ("" when it carried no metadata)."""
    names = []
    for r in records:
        if is_hello(r):
            body = r.get("body") or {}
            names.append(((body.get("client") or {}).get("driver") or {}).get("name", ""))
    return names


def commands_named(records: list[dict], name: str, collection: Optional[str] = None,
                   db: Optional[str] = None) -> list[dict]:
    out = []
    for r in records:
        if record_command_name(r) != name:
            continue
        body = r.get("body") or {}
        if collection is not None and body.get(name) != collection and \
                body.get("collection") != collection:
            continue
        if db is not None and (r.get("db") or body.get("$db")) != db:
            continue
        out.append(r)
    return out


# --------------------------------------------------------------------------------------
# The proxy.

def find_mongogate_binary() -> Optional[Path]:
    env = os.environ.get("MONGOGATE_BIN")
    if env:
        return Path(env)
    for i, arg in enumerate(sys.argv):
        if arg == "--mongogate-bin" and i + 1 < len(sys.argv):
            return Path(sys.argv[i + 1])
        if arg.startswith("--mongogate-bin="):
            return Path(arg.split("=", 1)[1])
    default = REPO_ROOT / "build" / "proxy" / "mongogate"
    return default if default.exists() else None


def strip_harness_argv(argv: list[str]) -> list[str]:
    """argv without --mongogate-bin, for unittest.main()."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--mongogate-bin":
            skip = True
            continue
        if arg.startswith("--mongogate-bin="):
            continue
        out.append(arg)
    return out


def write_yaml_config(path: Path, config: dict) -> None:
    """Write a mongogate configuration file (YAML; integer keys stay integers)."""
    try:
        import yaml
        text = yaml.safe_dump(config, default_flow_style=False, sort_keys=False)
    except ImportError:  # JSON is YAML too (integer keys become strings)
        text = json.dumps(config, indent=2)
    path.write_text(text)


def file_registry_config(main_uri: str, registry_file: Path, **sections: Any) -> dict:
    """A configuration with upstream ``main`` at ``main_uri`` and the stores read from
    ``registry_file`` (``registry.source: file``), plus the other top-level ``sections``."""
    return {"upstreams": {"main": {"uri": main_uri}},
            "registry": {"source": "file", "file": str(registry_file)},
            **sections}


def client_for(port: int, **options: Any) -> MongoClient:
    """pymongo to 127.0.0.1:``port`` with bounded waits and no retries (a retry would hide
    the error a test asserts on); ``options`` add to or override these settings."""
    settings: dict[str, Any] = dict(serverSelectionTimeoutMS=10000, connectTimeoutMS=10000,
                                    socketTimeoutMS=20000, retryReads=False, retryWrites=False)
    settings.update(options)
    return MongoClient("127.0.0.1", port, **settings)


def refused_insert_error(test: unittest.TestCase, port: int, database: str) -> str:
    """The error pymongo raises for an insert through mongogate on ``port`` that must be
    refused (the test fails when it is not); returned as text for the caller's checks."""
    client = client_for(port)
    try:
        with test.assertRaises(PyMongoError) as raised:
            client[database].refused.insert_one({"x": 1})
    finally:
        client.close()
    return str(raised.exception)


class Mongogate:
    """The real binary, started on an OS-chosen port, stopped with SIGTERM."""

    def __init__(self, binary: Path, upstream_uri: str, workdir: Path,
                 extra_args: Iterable[str] = (), env: Optional[dict] = None,
                 log_level: str = "debug", name: str = "mongogate",
                 cli_upstream: bool = True, cli_listen: bool = True,
                 admin: bool = False, admin_token: Optional[str] = None):
        self.binary = binary
        self.upstream_uri = upstream_uri
        self.workdir = workdir
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.log_level = log_level
        self.name = name
        self.proc: Optional[subprocess.Popen] = None
        self.port = 0
        self.log_path = workdir / f"{name}.stderr.log"
        self.port_file = workdir / f"{name}.port"
        self.exit_code: Optional[int] = None
        # False: pass the upstream / listen address only through MONGODB_URI /
        # MONGOGATE_LISTEN, to test the environment fallbacks.
        self.cli_upstream = cli_upstream
        self.cli_listen = cli_listen
        # True: the admin port listens on an OS-chosen port, read into ``admin_port``.
        # (Without it the admin port still listens on an OS-chosen port, through
        # MONGOGATE_ADMIN_LISTEN, so parallel proxies never collide on 9090.)
        self.admin = admin
        self.admin_token = admin_token
        self.admin_port = 0
        self.admin_port_file = workdir / f"{name}.admin-port"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def uri(self, db: str = "", **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"mongodb://127.0.0.1:{self.port}/{db}" + (f"?{query}" if query else "")

    def start(self) -> "Mongogate":
        if not self.binary.exists():
            raise RuntimeError(f"mongogate binary {self.binary} does not exist")
        with contextlib.suppress(FileNotFoundError):
            self.port_file.unlink()  # a stale port would point the tests elsewhere
        args = [str(self.binary), "--port-file", str(self.port_file),
                "--log-level", self.log_level]
        if self.cli_listen:
            args += ["--listen", "127.0.0.1:0"]
        if self.cli_upstream:
            args += ["--upstream", self.upstream_uri]
        if self.admin:
            with contextlib.suppress(FileNotFoundError):
                self.admin_port_file.unlink()
            args += ["--admin-listen", "127.0.0.1:0", "--admin-port-file", str(self.admin_port_file)]
            if self.admin_token is not None:
                args += ["--admin-token", self.admin_token]
        args += self.extra_args
        env = dict(os.environ)
        env["MONGOGATE_LISTEN"] = "127.0.0.1:0"
        env["MONGOGATE_ADMIN_LISTEN"] = "127.0.0.1:0"
        env["MONGODB_URI"] = self.upstream_uri
        # Sanitizer builds: keep reports in stderr, make leaks and UB fail the exit code.
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:halt_on_error=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            log.write(f"# {' '.join(args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         cwd=str(self.workdir), env=env,
                                         preexec_fn=_die_with_parent(signal.SIGKILL))
        self.port = _wait_for_port_file(self.port_file, self.proc, "mongogate", self.log_path,
                                        READY_TIMEOUT)
        # The port file is written once it accepts; prove it with a TCP connect.
        with socket.create_connection(("127.0.0.1", self.port), timeout=SOCKET_TIMEOUT):
            pass
        if self.admin:
            self.admin_port = _wait_for_port_file(self.admin_port_file, self.proc, "mongogate admin port",
                                                  self.log_path, READY_TIMEOUT)
        return self

    def admin_request(self, method: str, path: str, token: Optional[str] = None,
                      body: bytes = b"") -> tuple[int, dict, bytes]:
        """One HTTP request to the admin port: (status, headers, body)."""
        import http.client
        if not self.admin_port:
            raise RuntimeError("start the proxy with admin=True to use its admin port")
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=SOCKET_TIMEOUT)
        try:
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 5.0, flags: int = re.I) -> str:
        """The first log line matching the regex ``pattern``; AssertionError on timeout."""
        rx = re.compile(pattern, flags)

        def find() -> Optional[str]:
            for line in self.log().splitlines():
                if rx.search(line):
                    return line
            return None
        try:
            return wait_until(find, timeout, message=f"log line /{pattern}/")
        except AssertionError:
            raise AssertionError(f"no mongogate log line matches /{pattern}/ within {timeout}s; "
                                 f"log tail:\n{tail(self.log_path)}") from None

    def sanitizer_reports(self) -> list[str]:
        return [line for line in self.log().splitlines()
                if any(m in line for m in SANITIZER_MARKERS)]

    def stop(self) -> int:
        """SIGTERM, bounded wait, SIGKILL as a last resort; returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
                self.exit_code = self.proc.returncode
                raise AssertionError(f"mongogate did not exit within {STOP_TIMEOUT}s of SIGTERM; "
                                     f"log tail:\n{tail(self.log_path)}")
        self.exit_code = self.proc.returncode
        return self.exit_code

    def check_clean_exit(self) -> None:
        """Stop, then fail on a non-zero exit or any sanitizer report."""
        code = self.stop()
        problems = []
        reports = self.sanitizer_reports()
        if reports:
            problems.append("sanitizer reports in mongogate stderr:\n  " + "\n  ".join(reports[:20]))
        if code != 0:
            problems.append(f"mongogate exited with {code} after SIGTERM (want 0)")
        if problems:
            raise AssertionError("\n".join(problems) + self.sanitizer_excerpt()
                                 + f"\nlog {self.log_path} tail:\n" + tail(self.log_path, 3000))

    def sanitizer_excerpt(self, lines: int = 40, width: int = 240) -> str:
        """The start of the first sanitizer report (its top frames), lines shortened."""
        log = self.log().splitlines()
        for i, line in enumerate(log):
            if any(m in line for m in SANITIZER_MARKERS):
                block = [entry[:width] for entry in log[i:i + lines]]
                return "\nfirst sanitizer report:\n" + "\n".join(block)
        return ""


# --------------------------------------------------------------------------------------
# unittest glue.

class E2ETestCase(unittest.TestCase):
    """Base class: per-class temp dir, upstreams and proxies with guaranteed teardown.

    Subclasses call ``cls.start_upstream()`` and ``cls.start_proxy()`` in ``setUpClass``
    (or the instance variants inside a test). Each test fails if the proxy died during it.
    """

    workdir: Path
    _proxies: list[Mongogate]
    _upstreams: list[Upstream]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.workdir = Path(tempfile.mkdtemp(prefix=f"mongogate-e2e-{cls.__name__}-"))
        cls._proxies = []
        cls._upstreams = []
        cls._proxy_count = 0
        cls._keep_logs = bool(os.environ.get("MONGOGATE_E2E_KEEP_LOGS"))
        cls.addClassCleanup(cls._remove_workdir)
        # Runs before rmtree (cleanups are LIFO): stop processes, then check the proxy.
        cls.addClassCleanup(cls._stop_all)

    @classmethod
    def _remove_workdir(cls) -> None:
        if cls._keep_logs:
            print(f"\n[e2e] logs kept in {cls.workdir}", file=sys.stderr)
        else:
            shutil.rmtree(cls.workdir, ignore_errors=True)

    @classmethod
    def _stop_all(cls) -> None:
        errors = []
        for proxy in reversed(cls._proxies):
            try:
                proxy.check_clean_exit()
            except AssertionError as e:
                errors.append(str(e))
                cls._keep_logs = True  # keep the logs of a failed run
        for upstream in reversed(cls._upstreams):
            upstream.stop()
        cls._proxies.clear()
        cls._upstreams.clear()
        if errors:
            raise AssertionError("\n\n".join(errors) + f"\n(logs kept in {cls.workdir})")

    @classmethod
    def start_upstream(cls, name: str = "main", **kwargs: Any) -> Upstream:
        upstream = Upstream(name, cls.workdir, **kwargs)
        cls._upstreams.append(upstream)
        return upstream.start()

    @classmethod
    def start_proxy(cls, upstream: "Upstream | str", extra_args: Iterable[str] = (),
                    env: Optional[dict] = None, name: Optional[str] = None,
                    main_db: str = MAIN_DB, **options: Any) -> Optional[Mongogate]:
        """Start mongogate in front of ``upstream``; None in direct (development) mode.

        The upstream URI names ``main_db`` as the main database, as MONGODB_URI does in
        production (SPEC §2). ``upstream`` may also be a full URI string.
        """
        if DIRECT_MODE:
            return None
        uri = upstream if isinstance(upstream, str) else upstream.uri + main_db
        return cls._launch_proxy(uri, extra_args, env, cls._next_proxy_name(name), **options)

    @classmethod
    def start_inprocess_upstream(cls, name: str = "main", **kwargs: Any) -> InProcessUpstream:
        """An InProcessUpstream, stopped at class teardown after the proxies."""
        upstream = InProcessUpstream(name, cls.workdir, **kwargs)
        cls._upstreams.append(upstream)
        return upstream.start()

    @classmethod
    def start_configured_proxy(cls, config: dict, extra_args: Iterable[str] = (),
                               env: Optional[dict] = None, name: Optional[str] = None,
                               **options: Any) -> Optional[Mongogate]:
        """Start mongogate with ``--config FILE`` (``config`` written as YAML); None in
        direct (development) mode.

        The upstreams come only from the file (no ``--upstream``); MONGODB_URI in the
        proxy's environment is the file's ``upstreams.main.uri``. ``--listen``,
        ``--port-file`` and ``--log-level`` are still passed on the command line.
        """
        if DIRECT_MODE:
            return None
        name = cls._next_proxy_name(name)
        config_path = cls.workdir / f"{name}.yaml"
        write_yaml_config(config_path, config)
        return cls._launch_proxy(config["upstreams"]["main"]["uri"], ["--config", str(config_path), *extra_args],
                                 env, name, cli_upstream=False, **options)

    @classmethod
    def _next_proxy_name(cls, name: Optional[str]) -> str:
        """``name`` (default "mongogate") numbered, so that each proxy's files are its own."""
        cls._proxy_count += 1
        return f"{name or 'mongogate'}-{cls._proxy_count}"

    @classmethod
    def _launch_proxy(cls, upstream_uri: str, args: Iterable[str], env: Optional[dict], name: str,
                      **options: Any) -> Mongogate:
        """Start the binary; it is stopped and checked at class teardown."""
        binary = find_mongogate_binary()
        if binary is None:
            raise RuntimeError("no mongogate binary: set MONGOGATE_BIN (ctest does), pass "
                               "--mongogate-bin PATH, or build into <repo>/build")
        proxy = Mongogate(binary, upstream_uri, cls.workdir, args, env, name=name, **options)
        cls._proxies.append(proxy)
        return proxy.start()

    @classmethod
    def write_registry_file(cls, stores: list[dict], name: str = "stores.yaml") -> Path:
        """A registry file in the class's directory for ``registry.source: file``."""
        path = cls.workdir / name
        path.write_text(json.dumps({"stores": stores}))  # JSON is YAML
        return path

    @classmethod
    def stop_proxy(cls, proxy: Mongogate) -> None:
        """Stop one proxy now (SIGTERM → exit 0, no sanitizer reports)."""
        cls._proxies.remove(proxy)
        proxy.check_clean_exit()

    @staticmethod
    def client_address(proxy: Optional[Mongogate], upstream: Upstream) -> tuple[str, int]:
        if proxy is None:
            return ("127.0.0.1", upstream.port)
        return ("127.0.0.1", proxy.port)

    def require_proxy(self) -> None:
        if DIRECT_MODE:
            self.skipTest("about mongogate itself; MONGOGATE_E2E_DIRECT=1 skips the proxy")

    def setUp(self) -> None:
        super().setUp()
        # A hung test dumps every thread's stack and exits well before the ctest TIMEOUT.
        faulthandler.dump_traceback_later(PER_TEST_WATCHDOG, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        self.addCleanup(self._assert_proxies_alive)

    def _assert_proxies_alive(self) -> None:
        for proxy in type(self)._proxies:
            if not proxy.alive():
                raise AssertionError(f"mongogate ({proxy.name}) died during this test with "
                                     f"code {proxy.proc.returncode if proxy.proc else None}; "
                                     f"log tail:\n{tail(proxy.log_path)}")


def main() -> None:
    unittest.main(module="__main__", argv=strip_harness_argv(sys.argv))


# --------------------------------------------------------------------------------------
# Node clients (tests/e2e/node).

# Keeps the Node clients and mongosh quiet and offline: no telemetry, no update check, no
# greeting, no colour codes in the output the tests read.
NODE_QUIET_ENV = {"MONGOSH_FORCE_DISABLE_TELEMETRY_FOR_TESTING": "1", "MONGOSH_NO_UPDATE_CHECK": "1",
                  "DO_NOT_TRACK": "1", "CI": "1", "NO_COLOR": "1"}


def run_node_script(args: list[str], env: dict[str, str], timeout: float) -> tuple[Optional[dict], str]:
    """Run ``args`` (a script of tests/e2e/node, or mongosh) in that folder, without stdin,
    with ``env`` added to this process's environment.

    Fails (AssertionError with what it printed) when it does not finish within ``timeout``
    seconds or exits non-zero. Returns its last stdout line that starts with "{", parsed as
    JSON (None when there is none), and its output for the test's messages.
    """
    try:
        result = subprocess.run(args, cwd=str(NODE_DIR), env=dict(os.environ, **env), stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{args[:2]} did not finish within {timeout}s\nstdout:\n{e.stdout}\n"
                             f"stderr:\n{e.stderr}") from None
    output = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if result.returncode != 0:
        raise AssertionError(output)
    summary = [line for line in result.stdout.splitlines() if line.startswith("{")]
    return (json.loads(summary[-1]) if summary else None), output


# Node packages: `npm ci` once, serialized across parallel ctest processes.

def _node_modules_current() -> bool:
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    root = lock["packages"][""]
    for dep in root.get("dependencies", {}):
        want = lock["packages"].get(f"node_modules/{dep}", {}).get("version")
        pkg = NODE_DIR / "node_modules" / dep / "package.json"
        try:
            have = json.loads(pkg.read_text()).get("version")
        except (FileNotFoundError, ValueError):
            return False
        if have != want:
            return False
    return (NODE_DIR / "node_modules" / ".bin" / "mongosh").exists()


def ensure_node_modules(timeout: float = 600) -> None:
    """Run `npm ci` in tests/e2e/node when node_modules is missing or out of date."""
    if _node_modules_current():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH; cannot install tests/e2e/node dependencies")
    key = hashlib.sha256(str(NODE_DIR).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"mongogate-e2e-npm-ci-{key}.lock"
    with open(lock_path, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)  # a parallel ctest run may be installing
        try:
            if _node_modules_current():
                return
            result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
                                    cwd=str(NODE_DIR), stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True, timeout=timeout)
            if result.returncode != 0:
                raise RuntimeError(f"npm ci failed ({result.returncode}):\n{result.stdout[-4000:]}"
                                   f"\n{result.stderr[-4000:]}")
            if not _node_modules_current():
                raise RuntimeError("npm ci succeeded but node_modules does not match the lockfile")
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


if __name__ == "__main__":
    # `python3 harness.py npm-ci` installs the Node packages (the ctest fixture does this).
    if sys.argv[1:] == ["npm-ci"]:
        ensure_node_modules()
        print("tests/e2e/node/node_modules is current")
    else:
        print("usage: harness.py npm-ci", file=sys.stderr)
        sys.exit(2)
