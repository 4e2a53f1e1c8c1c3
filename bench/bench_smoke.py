#!/usr/bin/python3
"""Smoke test of the benchmark tools (not of mongogate's speed): argv = loadgen, driver_load,
canned_upstream binaries.

- loadgen closed loop and open loop (--rate) against the canned upstream: every op ok, the
  open loop sends exactly its schedule;
- loadgen open loop against a deliberately slow upstream (every reply 50 ms late, twice the
  25 ms send period): latency must be measured from the scheduled send, so the backlog shows
  in the percentiles (coordinated omission not hidden) and completed_per_s falls below the
  rate;
- driver_load (libmongoc) against the canned upstream: the three kinds ran, no errors, the
  finds returned 1 and 100 documents;
- loadgen idle mode with --release-file, and bench/upstream_connections.py counting the idle
  process's connections to the upstream port.
"""

import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import bson

HERE = os.path.dirname(os.path.abspath(__file__))
OP_MSG = 2013


def fail(msg):
    print('bench_smoke: FAIL: %s' % msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def run_json(args, timeout=60):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    check(proc.returncode == 0, '%s exited %d: %s %s' % (args[0], proc.returncode, proc.stdout, proc.stderr))
    return json.loads(proc.stdout)


class SlowUpstream:
    """Answers every OP_MSG with {ok: 1} after `delay` seconds, one request at a time."""

    def __init__(self, delay):
        self.delay = delay
        self.listener = socket.socket()
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        def exact(n):
            buf = b''
            while len(buf) < n:
                chunk = conn.recv(n - len(buf))
                if not chunk:
                    raise ConnectionError
                buf += chunk
            return buf
        try:
            while True:
                length, request_id, _, opcode = struct.unpack('<iiii', exact(16))
                exact(length - 16)
                if opcode != OP_MSG:
                    return
                body = bson.encode({'ok': 1.0})
                payload = struct.pack('<I', 0) + b'\x00' + body
                time.sleep(self.delay)
                conn.sendall(struct.pack('<iiii', 16 + len(payload), 1, request_id, OP_MSG) + payload)
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()

    def close(self):
        self.listener.close()


def main():
    if len(sys.argv) != 4:
        fail('usage: bench_smoke.py LOADGEN DRIVER_LOAD CANNED_UPSTREAM')
    loadgen, driver_load, canned = sys.argv[1:]
    tmp = tempfile.mkdtemp()
    port_file = os.path.join(tmp, 'port')
    upstream = subprocess.Popen([canned, '--port', '0', '--port-file', port_file],
                                stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(port_file):
                break
            time.sleep(0.1)
        port = int(open(port_file).read())
        base = [loadgen, '--port', str(port), '--json']

        closed = run_json(base + ['--connections', '2', '--duration-s', '0.3', '--warmup-s', '0.1'])
        check(closed['mode'] == 'closed' and closed['errors'] == 0 and closed['ops'] > 0, 'closed %r' % closed)
        check(min(closed['ops_find_id'], closed['ops_insert'], closed['ops_find100']) > 0, 'mix %r' % closed)

        # 4 connections at 400/s: each sends every 10 ms; a 1 s window holds 100 slots each.
        opened = run_json(base + ['--connections', '4', '--rate', '400', '--duration-s', '1',
                                  '--warmup-s', '0.2'])
        check(opened['mode'] == 'open' and opened['errors'] == 0, 'open %r' % opened)
        check(396 <= opened['ops'] <= 404, 'open loop ops %d, want 400 +- 4' % opened['ops'])
        check(opened['p50_us'] > 0 and opened['p99_us'] >= opened['p50_us'], 'open percentiles %r' % opened)

        # One connection, a send due every 25 ms, each reply 50 ms late: slot k is answered at
        # about 50 (k + 1) ms but was due at 25 k ms, so latency from the schedule grows to
        # ~0.5 s over 20 slots. Measured from the actual send it would stay ~50 ms.
        slow = SlowUpstream(0.05)
        try:
            lagged = run_json([loadgen, '--port', str(slow.port), '--json', '--connections', '1',
                               '--rate', '40', '--duration-s', '0.5', '--warmup-s', '0'])
        finally:
            slow.close()
        check(lagged['errors'] == 0 and lagged['ops'] == 20, 'slow upstream run %r' % lagged)
        check(lagged['p50_us'] > 150000, 'latency not measured from the schedule: p50 %.0f us'
              % lagged['p50_us'])
        check(lagged['p99_us'] > 350000, 'backlog not visible at p99: %.0f us' % lagged['p99_us'])
        check(lagged['send_lag_p99_us'] > 200000, 'send lag %r' % lagged['send_lag_p99_us'])
        check(lagged['completed_per_s'] < 30, 'completed_per_s %r should fall below the rate'
              % lagged['completed_per_s'])

        driver = run_json([driver_load, '--uri', 'mongodb://127.0.0.1:%d/?directConnection=true' % port,
                           '--connections', '2', '--duration-s', '0.5', '--warmup-s', '0.1', '--json'])
        check(driver['tool'] == 'libmongoc' and driver['errors'] == 0 and driver['established'] == 2,
              'driver %r' % driver)
        check(min(driver['ops_find_id'], driver['ops_insert'], driver['ops_find100']) > 0, 'driver mix %r' % driver)
        check(driver['docs_find_id'] == driver['ops_find_id'], 'find_id documents %r' % driver)
        check(driver['docs_find100'] == 100 * driver['ops_find100'], 'find100 documents %r' % driver)

        ready = os.path.join(tmp, 'ready')
        release = os.path.join(tmp, 'release')
        idle = subprocess.Popen(base[:3] + ['--idle-connections', '50', '--hold-s', '60',
                                            '--ready-file', ready, '--release-file', release],
                                stdout=subprocess.PIPE, text=True)
        try:
            for _ in range(200):
                if os.path.exists(ready) and os.path.getsize(ready) > 0:
                    break
                time.sleep(0.05)
            check(open(ready).read().strip() == 'ready 50', 'ready file %r' % open(ready).read())
            counter = os.path.join(HERE, 'upstream_connections.py')
            count = subprocess.run([sys.executable, counter, str(idle.pid), str(port)],
                                   capture_output=True, text=True, timeout=30)
            check(count.stdout.strip() == '50', 'upstream_connections counted %r' % count.stdout)
            other = subprocess.run([sys.executable, counter, str(idle.pid), str(port + 1)],
                                   capture_output=True, text=True, timeout=30)
            check(other.stdout.strip() == '0', 'connections to another port counted: %r' % other.stdout)
            started = time.monotonic()
            open(release, 'w').close()
            out, _ = idle.communicate(timeout=10)
            check(time.monotonic() - started < 5, 'the release file did not end the hold')
            check(idle.returncode == 0 and json.loads(out)['idle_connections_open'] == 50, 'idle %r' % out)
        finally:
            if idle.poll() is None:
                idle.kill()
                idle.wait()
    finally:
        upstream.terminate()
        upstream.wait(10)
    print('bench_smoke: 1 passed, 0 failed')


if __name__ == '__main__':
    main()
