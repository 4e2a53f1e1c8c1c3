"""mongodb+srv:// through the real binary, with a tiny DNS server of this test (stdlib
UDP) that mongogate's libresolv queries are pointed at (MONGOGATE_TEST_DNS_SERVER, a
test-only hook). What is proven:
  * the SRV answer becomes the seed list (/v1/upstreams lists the hosts), and the TXT
    record's replicaSet and authSource are applied;
  * a SRV target outside the parent domain, several TXT records, or a TXT option other
    than authSource/replicaSet/loadBalanced stop --check-config with a clear error;
  * no SRV records: a clear error.
The SRV targets (nodeN.db.localhost) do not resolve to addresses here, so nothing is
served through them: connecting through SRV-found hosts is the same code as any host.
"""
from __future__ import annotations

import json
import socket
import struct
import subprocess
import threading
import unittest

import harness
from harness import E2ETestCase, file_registry_config

DOMAIN = "db.localhost"
SRV_HOST = f"cluster0.{DOMAIN}"


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


class FakeDns:
    """Answers SRV and TXT questions from `records` ({(name, type): [rdata bytes]})."""

    SRV, TXT = 33, 16

    def __init__(self) -> None:
        self.records: dict[tuple[str, int], list[bytes]] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[tuple[str, int]] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def srv(self, name: str, targets: list[tuple[str, int]]) -> None:
        self.records[(name.lower(), self.SRV)] = [struct.pack(">HHH", 0, 0, port) + encode_name(target)
                                                  for target, port in targets]

    def txt(self, name: str, texts: list[str]) -> None:
        self.records[(name.lower(), self.TXT)] = [bytes([len(t)]) + t.encode() for t in texts]

    def serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query_id, _flags, qdcount = struct.unpack(">HHH", data[:6])
            pos, labels = 12, []
            while data[pos]:
                labels.append(data[pos + 1:pos + 1 + data[pos]].decode())
                pos += 1 + data[pos]
            qtype, _qclass = struct.unpack(">HH", data[pos + 1:pos + 5])
            question = data[12:pos + 5]
            name = ".".join(labels).lower()
            self.queries.append((name, qtype))
            answers = self.records.get((name, qtype), [])
            rcode = 0 if answers or any(n == name for n, _ in self.records) else 3  # NXDOMAIN
            header = struct.pack(">HHHHHH", query_id, 0x8180 | rcode, 1, len(answers), 0, 0)
            body = b"".join(b"\xc0\x0c" + struct.pack(">HHIH", qtype, 1, 60, len(rdata)) + rdata
                            for rdata in answers)
            self.sock.sendto(header + question + body, peer)

    def close(self) -> None:
        self.sock.close()


class UpstreamSrvTest(E2ETestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.dns = FakeDns()
        cls.addClassCleanup(cls.dns.close)
        cls.registry_file = cls.write_registry_file([])

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()

    def env(self) -> dict:
        return {"MONGOGATE_TEST_DNS_SERVER": f"127.0.0.1:{self.dns.port}"}

    def check_config(self, uri: str) -> subprocess.CompletedProcess:
        import os
        binary = harness.find_mongogate_binary()
        env = dict(os.environ, **self.env())
        return subprocess.run([str(binary), "--check-config", "--upstream", uri], capture_output=True,
                              text=True, timeout=60, env=env)

    def test_srv_and_txt_records_become_the_seed_list_and_options(self):
        host = f"c1.{DOMAIN}"
        self.dns.srv(f"_mongodb._tcp.{host}", [(f"node1.{DOMAIN}.", 27017), (f"node2.{DOMAIN}", 27018)])
        self.dns.txt(host, ["replicaSet=rs0&authSource=admin"])
        done = self.check_config(f"mongodb+srv://{host}/e2e_main")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertIn("configuration OK", done.stdout)
        self.assertIn((f"_mongodb._tcp.{host}", FakeDns.SRV), self.dns.queries)
        self.assertIn((host, FakeDns.TXT), self.dns.queries)

        config = file_registry_config(f"mongodb+srv://{host}/e2e_main", self.registry_file)
        proxy = self.start_configured_proxy(config, admin=True, env=self.env())
        status, _, body = proxy.admin_request("GET", "/v1/upstreams")
        self.assertEqual(status, 200, body)
        main = next(u for u in json.loads(body)["upstreams"] if u["name"] == "main")
        self.assertEqual(main["hosts"], [f"node1.{DOMAIN}:27017", f"node2.{DOMAIN}:27018"])

    def test_target_outside_the_parent_domain_is_refused(self):
        host = f"c2.{DOMAIN}"
        self.dns.srv(f"_mongodb._tcp.{host}", [(f"node1.{DOMAIN}", 27017), ("evil.example.org", 27017)])
        done = self.check_config(f"mongodb+srv://{host}/e2e_main")
        self.assertEqual(done.returncode, 2, done.stdout)
        self.assertIn("the SRV record evil.example.org is not in the domain db.localhost", done.stderr)

    def test_txt_record_rules(self):
        host = f"c3.{DOMAIN}"
        self.dns.srv(f"_mongodb._tcp.{host}", [(f"node1.{DOMAIN}", 27017)])
        self.dns.txt(host, ["ssl=false"])
        done = self.check_config(f"mongodb+srv://{host}/e2e_main")
        self.assertEqual(done.returncode, 2, done.stdout)
        self.assertIn("only authSource, replicaSet and loadBalanced are allowed", done.stderr)
        self.dns.txt(host, ["authSource=a", "replicaSet=b"])
        done = self.check_config(f"mongodb+srv://{host}/e2e_main")
        self.assertEqual(done.returncode, 2, done.stdout)
        self.assertIn("several TXT records", done.stderr)

    def test_no_srv_records_is_a_clear_error(self):
        done = self.check_config(f"mongodb+srv://c4.{DOMAIN}/e2e_main")
        self.assertEqual(done.returncode, 2, done.stdout)
        self.assertIn(f"no SRV records for _mongodb._tcp.c4.{DOMAIN}", done.stderr)


if __name__ == "__main__":
    unittest.main()
