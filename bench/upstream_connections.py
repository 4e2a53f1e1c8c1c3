#!/usr/bin/env python3
"""Counts the ESTABLISHED TCP connections a process holds to a given remote port.

For bench/run_benchmarks.sh: how many upstream connections mongogate uses while many
clients are connected. A socket belongs to the process when its inode is one of the
process's descriptors (/proc/PID/fd -> socket:[INODE]); its state and remote port come
from /proc/PID/net/tcp and tcp6 (the process's network namespace). Nothing is inferred
from other processes' connections to the same port.

  upstream_connections.py PID PORT
      prints the count now.
  upstream_connections.py PID PORT --until-file PATH [--interval-s 0.1] [--timeout-s 600]
      samples until PATH exists (or the timeout) and prints
      {"samples": N, "min": .., "max": .., "last": ..} as JSON.
"""
import argparse
import json
import os
import sys
import time

ESTABLISHED = '01'


def socket_inodes(pid):
    inodes = set()
    fd_dir = '/proc/%d/fd' % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue  # closed between listdir and readlink
        if target.startswith('socket:['):
            inodes.add(target[8:-1])
    return inodes


def established_to_port(pid, port):
    # Rows read "sl local_address rem_address st ... inode": a substring test on the remote
    # port and state keeps this cheap with tens of thousands of sockets in the table.
    needle = ':%04X %s ' % (port, ESTABLISHED)
    candidates = []
    for table in ('tcp', 'tcp6'):
        try:
            with open('/proc/%d/net/%s' % (pid, table)) as f:
                next(f)  # header
                for line in f:
                    if needle not in line:
                        continue
                    fields = line.split()
                    if len(fields) >= 10 and fields[2].endswith(needle[:5]) and fields[3] == ESTABLISHED:
                        candidates.append(fields[9])
        except FileNotFoundError:
            continue
    if not candidates:
        return 0
    inodes = socket_inodes(pid)
    return sum(1 for inode in candidates if inode in inodes)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('pid', type=int)
    p.add_argument('port', type=int)
    p.add_argument('--until-file')
    p.add_argument('--interval-s', type=float, default=0.1)
    p.add_argument('--timeout-s', type=float, default=600)
    args = p.parse_args()
    if not args.until_file:
        print(established_to_port(args.pid, args.port))
        return 0
    samples = []
    deadline = time.monotonic() + args.timeout_s
    while time.monotonic() < deadline:
        try:
            samples.append(established_to_port(args.pid, args.port))
        except OSError:
            break  # the process is gone
        if os.path.exists(args.until_file):
            break
        time.sleep(args.interval_s)
    if not samples:
        print(json.dumps({'samples': 0, 'min': None, 'max': None, 'last': None}))
        return 1
    print(json.dumps({'samples': len(samples), 'min': min(samples), 'max': max(samples),
                      'last': samples[-1]}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
