"""TLS from mongogate to its upstream, against a mock upstream serving TLS with
certificates this test makes with the openssl CLI (a CA, a second unrelated CA, and a
server certificate for DNS name "localhost" only, signed by the first CA).

What is proven (each through the real binary, pymongo as the client):
  * right CA, matching host name: CRUD works and the documents are upstream;
  * wrong CA: no connection; the client's error says the certificate was refused and
    names no upstream host; the log says the same; /readyz is 503 with the reason;
  * host name mismatch (connecting to 127.0.0.1, a name the certificate lacks): refused,
    unless tlsAllowInvalidHostnames=true;
  * tlsAllowInvalidCertificates=true accepts the wrong CA's server;
  * an unreadable tlsCAFile stops the start with a clear error (exit 2).
"""
from __future__ import annotations

import json
import re
import subprocess
import unittest
from pathlib import Path

from pymongo import MongoClient

import harness
from harness import MAIN_DB, E2ETestCase, client_for, file_registry_config, refused_insert_error, wait_until

STORES = [{"storeId": "s1", "name": "One", "prefix": "abc", "databaseId": 1}]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=str(cwd), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


def make_ca(directory: Path, name: str) -> Path:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory)
    return directory / f"{name}.pem"


def make_server_certificate(directory: Path, ca: str, dns_name: str) -> Path:
    """A certificate for `dns_name` only (no IP address), signed by `ca`; key appended."""
    (directory / "san.ext").write_text(f"subjectAltName=DNS:{dns_name}\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={dns_name}",
            "-keyout", "server.key", "-out", "server.csr", cwd=directory)
    openssl("x509", "-req", "-in", "server.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem", cwd=directory)
    bundle = directory / "server-bundle.pem"
    bundle.write_text((directory / "server.pem").read_text() + (directory / "server.key").read_text())
    return bundle


class UpstreamTlsTest(E2ETestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.certs = cls.workdir / "certs"
        cls.certs.mkdir()
        cls.ca = make_ca(cls.certs, "right-ca")
        cls.wrong_ca = make_ca(cls.certs, "wrong-ca")
        bundle = make_server_certificate(cls.certs, "right-ca", "localhost")
        cls.upstream = cls.start_upstream("main", extra_args=["--host", "127.0.0.1",
                                                              "--tls-cert-key-file", str(bundle)])
        cls.registry_file = cls.write_registry_file(STORES)

    def setUp(self) -> None:
        super().setUp()
        self.require_proxy()

    def start(self, host: str, options: str):
        uri = f"mongodb://{host}:{self.upstream.port}/{MAIN_DB}?{options}"
        config = file_registry_config(uri, self.registry_file, pool={"reconnect_backoff_max_ms": 200})
        return self.start_configured_proxy(config, admin=True)

    def direct_upstream(self) -> MongoClient:
        """pymongo straight to the TLS mock (not through mongogate)."""
        return MongoClient(f"mongodb://localhost:{self.upstream.port}/?tls=true&tlsCAFile={self.ca}",
                           serverSelectionTimeoutMS=10000, directConnection=True)

    def readyz(self, proxy) -> tuple[int, dict]:
        status, _, body = proxy.admin_request("GET", "/readyz")
        return status, json.loads(body)

    def assert_works(self, proxy, collection: str) -> None:
        client = client_for(proxy.port)
        try:
            client[MAIN_DB][collection].insert_many([{"n": i} for i in range(5)])
            self.assertEqual(sorted(d["n"] for d in client[MAIN_DB][collection].find({}, {"_id": 0})),
                             list(range(5)))
        finally:
            client.close()
        direct = self.direct_upstream()
        try:
            self.assertEqual(direct[MAIN_DB][collection].count_documents({}), 5)
        finally:
            direct.close()
        wait_until(lambda: self.readyz(proxy)[0] == 200, 10, message="/readyz 200")

    def assert_refused(self, proxy, reason: str) -> None:
        message = refused_insert_error(self, proxy.port, MAIN_DB)
        self.assertIn("TLS handshake failed", message)
        self.assertIn(reason, message)
        # Clients never learn where the upstream is.
        self.assertNotIn("localhost", message)
        self.assertNotIn(str(self.upstream.port), message)
        proxy.wait_for_log(r"cannot open a connection: TLS handshake failed: .*" + re.escape(reason))

        def not_ready():
            status, body = self.readyz(proxy)
            return status == 503 and body["checks"]["main_reachable"] is False and reason in body["error"]
        wait_until(not_ready, 10, message=f"/readyz 503 naming '{reason}'")

    def test_right_ca_and_host_name_crud_works(self):
        proxy = self.start("localhost", f"tls=true&tlsCAFile={self.ca}")
        self.assert_works(proxy, "right_ca")

    def test_wrong_ca_is_refused_with_a_clear_error(self):
        proxy = self.start("localhost", f"tls=true&tlsCAFile={self.wrong_ca}")
        self.assert_refused(proxy, "certificate verify failed (unable to get local issuer certificate)")

    def test_host_name_mismatch_is_refused(self):
        proxy = self.start("127.0.0.1", f"tls=true&tlsCAFile={self.ca}")
        self.assert_refused(proxy, "IP address mismatch")

    def test_allow_invalid_hostnames_accepts_the_mismatch(self):
        proxy = self.start("127.0.0.1", f"tls=true&tlsCAFile={self.ca}&tlsAllowInvalidHostnames=true")
        self.assert_works(proxy, "any_host_name")

    def test_allow_invalid_certificates_accepts_the_wrong_ca(self):
        proxy = self.start("localhost", f"tls=true&tlsCAFile={self.wrong_ca}&tlsAllowInvalidCertificates=true")
        self.assert_works(proxy, "any_certificate")

    def test_plain_connection_to_a_tls_upstream_fails_cleanly(self):
        proxy = self.start("localhost", "appName=plain")
        message = refused_insert_error(self, proxy.port, MAIN_DB)
        self.assertIn("unreachable", message)
        self.assertNotIn("localhost", message)

    def test_unreadable_ca_file_stops_the_start(self):
        binary = harness.find_mongogate_binary()
        missing = self.workdir / "no-such-ca.pem"
        done = subprocess.run(
            [str(binary), "--listen", "127.0.0.1:0", "--admin-listen", "off",
             "--upstream", f"mongodb://localhost:{self.upstream.port}/{MAIN_DB}?tls=true&tlsCAFile={missing}"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("cannot load the CA file " + str(missing), done.stderr)


if __name__ == "__main__":
    unittest.main()
