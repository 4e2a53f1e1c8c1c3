"""Deployment files (docker/) checked against the real project: they fail when either drifts.

No container engine runs here, so each file is checked two ways:
  * statically: every YAML parses; the Dockerfile's build stage installs exactly dev.sh's
    BUILD_PACKAGES and runs the build command the README documents; its runtime stage
    installs a package for every shared library the built binary needs, runs as a numeric
    non-root user and has a HEALTHCHECK; the Kubernetes and compose files reference what
    exists (Secret keys, ConfigMap keys, volumes, Dockerfiles, services).
  * by running them: the real mongogate binary is started with the environment, command
    line, config and ports each file declares (the Dockerfile's ENV and ENTRYPOINT; the
    Pod's env, Secret and ConfigMap; the compose service's environment), in front of the
    mock upstreams (tests/upstream/mock_upstream.py) standing in for MongoDB. Then the
    declared probes, healthchecks, preStop hook and app connection strings are exercised
    exactly as written, on the ports written. To use the fixed ports (27017, 9090) without
    colliding with anything on the machine, the whole module re-runs itself in a private
    network namespace (`unshare -rn`), where a second loopback address stands for the
    Pod's / container's IP: a probe aimed at it fails if the admin port listens on
    loopback only, as it would on a real kubelet.

Env: MONGOGATE_BIN (ctest sets it), else build/proxy/mongogate.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DOCKER = ROOT / "docker"
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import harness  # noqa: E402  (the e2e harness: mock upstreams, bounded waits)

POD_IP = "10.244.0.7"  # the Pod's / container's address inside the private namespace
NETNS_FLAG = "MONGOGATE_DEPLOY_NETNS"
# Packages every Debian image, slim included, already has (Essential or required by apt).
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}


def binary() -> Path:
    path = os.environ.get("MONGOGATE_BIN") or str(ROOT / "build" / "proxy" / "mongogate")
    return Path(path)


# --------------------------------------------------------------------------------------
# The private network namespace.

def _enter_netns() -> None:
    """Re-run this process in a new user + network namespace, with lo up and POD_IP on it."""
    if os.environ.get(NETNS_FLAG) or not shutil.which("unshare") or not shutil.which("ip"):
        return
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    if probe.returncode != 0:
        return  # no user namespaces here: the run-time tests skip (see in_netns)
    setup = f"ip link set lo up && ip addr add {POD_IP}/32 dev lo && exec \"$@\""
    argv = list(getattr(sys, "orig_argv", [sys.executable] + sys.argv))
    os.environ[NETNS_FLAG] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("unshare", ["unshare", "-rn", "sh", "-c", setup, "sh", *argv])


def in_netns() -> bool:
    return os.environ.get(NETNS_FLAG) == "1"


_enter_netns()


# --------------------------------------------------------------------------------------
# Reading the files.

def load_yaml_documents(path: Path) -> list:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def shell_array(text: str, name: str) -> list[str]:
    """The words of a bash array NAME=(...) in dev.sh (comments dropped)."""
    match = re.search(rf"^{name}=\((.*?)\)", text, re.S | re.M)
    if not match:
        raise AssertionError(f"dev.sh has no {name}=(...) array")
    body = "\n".join(line.split("#", 1)[0] for line in match.group(1).splitlines())
    return body.split()


class Dockerfile:
    """Instructions grouped by stage: [(keyword, argument text)], continuation lines joined."""

    def __init__(self, path: Path):
        self.path = path
        logical, pending = [], ""
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not pending and (not line or line.startswith("#")):
                continue
            if line.startswith("#"):
                continue  # a comment inside a continued instruction
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            logical.append(pending + line)
            pending = ""
        self.stages: list[list[tuple[str, str]]] = []
        for line in logical:
            keyword, _, rest = line.partition(" ")
            keyword = keyword.upper()
            if keyword == "FROM":
                self.stages.append([])
            self.stages[-1].append((keyword, rest.strip()))

    def stage(self, index: int) -> list[tuple[str, str]]:
        return self.stages[index]

    @staticmethod
    def all(stage: list[tuple[str, str]], keyword: str) -> list[str]:
        return [rest for k, rest in stage if k == keyword]

    @staticmethod
    def exec_form(text: str) -> list[str]:
        """["a", "b"] (JSON exec form) or a shell-form string split like sh would."""
        text = text.strip()
        if text.startswith("["):
            return list(yaml.safe_load(text))
        return shlex.split(text)

    @staticmethod
    def env(stage: list[tuple[str, str]]) -> dict[str, str]:
        values = {}
        for rest in Dockerfile.all(stage, "ENV"):
            for word in shlex.split(rest):
                key, _, value = word.partition("=")
                values[key] = value
        return values


def apt_packages(run_commands: list[str]) -> list[str]:
    """Package names given to `apt-get install` in these RUN commands."""
    names = []
    for command in run_commands:
        for part in re.split(r"&&|;", command):
            words = shlex.split(part)
            if words[:2] == ["apt-get", "install"] or (len(words) > 2 and words[1:3] == ["apt-get", "install"]):
                names += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return names


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def readme_sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def readme_dev_commands() -> set[str]:
    """Every `./dev.sh SUBCOMMAND` the README shows in its sh code blocks."""
    found = set()
    for block in readme_sh_blocks():
        found.update(m.group(0) for m in re.finditer(r"\./dev\.sh [a-z]+", block))
    return found


def http_get(host: str, port: int, path: str, method: str = "GET",
             token: Optional[str] = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_status(host: str, port: int, path: str, status: int, timeout: float = 15) -> None:
    last = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            last = http_get(host, port, path)
            if last[0] == status:
                return
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"GET http://{host}:{port}{path}: wanted {status}, last answer {last!r}")


class Process:
    """The real binary with a given argv and environment; stopped with SIGTERM."""

    def __init__(self, argv: list[str], env: dict[str, str], workdir: Path, name: str):
        self.log_path = workdir / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, cwd=str(workdir),
                                     preexec_fn=harness._die_with_parent(signal.SIGKILL))

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, host: str, port: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mongogate exited with {self.proc.returncode}:\n{self.text()[-3000:]}")
            with contextlib.suppress(OSError):
                socket.create_connection((host, port), timeout=1).close()
                return
            time.sleep(0.05)
        raise AssertionError(f"nothing listens on {host}:{port}:\n{self.text()[-3000:]}")

    def terminate(self, timeout: float) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds to exit)."""
        if self.proc.poll() is not None:
            return self.proc.returncode, 0.0
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
            raise AssertionError(f"mongogate did not exit within {timeout}s of SIGTERM")
        finally:
            self.log.close()
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(Exception):
            self.log.close()


def image_command(argv: list[str]) -> list[str]:
    """A command as the image runs it, with the image's binaries mapped to this checkout."""
    mapping = {"mongogate": str(binary()), "mongogate-http": str(DOCKER / "mongogate-http")}
    return [mapping.get(argv[0], argv[0])] + argv[1:]


def with_host(uri: str, host: str, port: int) -> str:
    """A mongodb:// URI with its (single) host replaced, credentials dropped."""
    parts = urlsplit(uri)
    return f"mongodb://{host}:{port}{parts.path}" + (f"?{parts.query}" if parts.query else "")


DOCKERFILE = Dockerfile(DOCKER / "Dockerfile")
BUILD_STAGE, RUNTIME_STAGE = DOCKERFILE.stage(0), DOCKERFILE.stage(len(DOCKERFILE.stages) - 1)
IMAGE_ENV = Dockerfile.env(RUNTIME_STAGE)


def k8s_objects() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in load_yaml_documents(DOCKER / "k8s-sidecar.yaml")}


def pod_spec() -> dict:
    return k8s_objects()["Deployment"]["spec"]["template"]["spec"]


def sidecar() -> dict:
    matches = [c for c in pod_spec().get("initContainers", []) if c["name"] == "mongogate"]
    if len(matches) != 1:
        raise AssertionError("the Deployment has no initContainer named mongogate")
    return matches[0]


def app_container() -> dict:
    return pod_spec()["containers"][0]


def container_env(container: dict, secret_values: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: image ENV, envFrom, env."""
    env = dict(IMAGE_ENV) if container.get("name") == "mongogate" else {}
    secrets = {s["metadata"]["name"]: s for s in [k8s_objects()["Secret"]]}
    for source in container.get("envFrom", []):
        name = source["secretRef"]["name"]
        if name not in secrets:
            raise AssertionError(f"envFrom names Secret {name!r}, which the file does not define")
        for key in secrets[name]["stringData"]:
            env[key] = secret_values[key]
    for item in container.get("env", []):
        env[item["name"]] = item["value"]
    return env


def probe_port(container: dict, port) -> int:
    if isinstance(port, int):
        return port
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return declared["containerPort"]
    raise AssertionError(f"probe port {port!r} is not a named port of {container['name']}")


# --------------------------------------------------------------------------------------
# Static checks.

class StaticFiles(unittest.TestCase):
    def test_every_yaml_parses(self):
        files = sorted(DOCKER.glob("*.yaml")) + sorted(DOCKER.glob("*.yml"))
        self.assertGreaterEqual(len(files), 2)
        for path in files:
            with self.subTest(path=path.name):
                self.assertTrue(load_yaml_documents(path), f"{path} holds no YAML document")

    def test_build_stage_installs_exactly_dev_sh_build_packages(self):
        self.assertTrue(BUILD_STAGE[0][1].startswith("debian:bookworm "), BUILD_STAGE[0])
        wanted = shell_array((ROOT / "dev.sh").read_text(), "BUILD_PACKAGES")
        installed = apt_packages(Dockerfile.all(BUILD_STAGE, "RUN"))
        self.assertEqual(sorted(installed), sorted(wanted),
                         "the Dockerfile's build packages differ from dev.sh's BUILD_PACKAGES")

    def test_build_stage_runs_the_readme_build_commands(self):
        documented = readme_dev_commands()
        self.assertIn("./dev.sh build", documented, "the README documents no `./dev.sh build`")
        dev_runs = [r for r in Dockerfile.all(BUILD_STAGE, "RUN") if "dev.sh" in r]
        self.assertEqual(dev_runs, ["./dev.sh build"],
                         "the build stage must build with the README's command, ./dev.sh build")
        # What dev.sh build produces is what the build stage takes.
        dev_sh = (ROOT / "dev.sh").read_text()
        cmd_build = re.search(r"^cmd_build\(\) \{(.*?)^\}", dev_sh, re.S | re.M)
        self.assertIsNotNone(cmd_build, "dev.sh has no cmd_build")
        self.assertIn('install_packages "${BUILD_PACKAGES[@]}"', cmd_build.group(1))
        build_dir = re.search(r"configure_build (\S+)", cmd_build.group(1)).group(1)
        produced = f"{build_dir}/proxy/mongogate"
        self.assertTrue(any(produced in r for r in Dockerfile.all(BUILD_STAGE, "RUN")),
                        f"the build stage does not take {produced}")
        self.assertIn(produced, (ROOT / "README.md").read_text())
        self.assertRegex(dev_sh, r"\n\s*build\) shift; cmd_build")

    def test_runtime_stage_is_slim_non_root_with_healthcheck(self):
        self.assertEqual(RUNTIME_STAGE[0][1], "debian:bookworm-slim")
        users = Dockerfile.all(RUNTIME_STAGE, "USER")
        self.assertEqual(len(users), 1, "the runtime stage needs one USER")
        uid = users[0].split(":")[0]
        self.assertTrue(uid.isdigit() and int(uid) > 0,
                        "USER must be a numeric non-root uid (runAsNonRoot can only verify numbers)")
        runs = " ".join(Dockerfile.all(RUNTIME_STAGE, "RUN"))
        gid = users[0].split(":")[1] if ":" in users[0] else uid
        self.assertRegex(runs, rf"groupadd [^&]*--gid {gid}\b")
        self.assertRegex(runs, rf"useradd [^&]*--uid {uid} --gid {gid}\b")
        checks = Dockerfile.all(RUNTIME_STAGE, "HEALTHCHECK")
        self.assertEqual(len(checks), 1)
        command = Dockerfile.exec_form(checks[0].split("CMD", 1)[1])
        self.assertIn("/healthz", command)
        copied = {Path(c.split()[-1]).name for c in Dockerfile.all(RUNTIME_STAGE, "COPY")}
        self.assertIn(command[0], copied, "the HEALTHCHECK runs a program the image does not contain")
        self.assertEqual(Dockerfile.exec_form(Dockerfile.all(RUNTIME_STAGE, "ENTRYPOINT")[0]), ["mongogate"])

    def test_runtime_packages_cover_the_binarys_libraries(self):
        if not binary().exists():
            self.skipTest(f"{binary()} is not built")
        listed = set(apt_packages(Dockerfile.all(RUNTIME_STAGE, "RUN")))
        self.assertFalse({p for p in listed if p.endswith("-dev")}, "-dev packages in the runtime image")
        closure = set(listed | BASE_PACKAGES)
        todo = list(listed | BASE_PACKAGES)
        while todo:  # every package the runtime list pulls in, through installed Depends
            name = todo.pop()
            result = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", name],
                                    capture_output=True, text=True)
            for alternative in re.split(r"[,|]", result.stdout):
                dep = re.sub(r"\(.*?\)|:any|:\w+$", "", alternative).strip()
                if dep and dep not in closure:
                    closure.add(dep)
                    todo.append(dep)
        ldd = subprocess.run(["ldd", str(binary())], capture_output=True, text=True, check=True).stdout
        libraries = re.findall(r"=> (/\S+)", ldd)
        needed = set(re.findall(r"\(NEEDED\).*\[(.+)\]",
                                subprocess.run(["readelf", "-d", str(binary())], capture_output=True,
                                               text=True, check=True).stdout))
        self.assertTrue(libraries and needed)
        for library in libraries:
            owner = None
            for candidate in (library, os.path.realpath(library)):
                found = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
                if found.returncode == 0:
                    owner = found.stdout.split(":")[0]
                    break
            if owner is None or re.match(r"lib(a|t|l|ub|hwa)san", os.path.basename(library)):
                continue  # not from a Debian package, or a sanitizer runtime (ASan build)
            with self.subTest(library=library):
                self.assertIn(owner, closure, f"{library} ({owner}) is not in the runtime image")
                if os.path.basename(library) in needed:
                    self.assertIn(owner, listed | BASE_PACKAGES,
                                  f"the binary links {library}: list {owner} in the runtime stage")

    def test_exposed_ports_are_the_listen_ports(self):
        exposed = {int(p.split("/")[0]) for rest in Dockerfile.all(RUNTIME_STAGE, "EXPOSE") for p in rest.split()}
        listen = host_port(IMAGE_ENV["MONGOGATE_LISTEN"])
        admin = host_port(IMAGE_ENV["MONGOGATE_ADMIN_LISTEN"])
        self.assertEqual(exposed, {listen[1], admin[1]})
        self.assertEqual(listen[0], "0.0.0.0")
        self.assertEqual(admin[0], "0.0.0.0")

    def test_k8s_sidecar_shape(self):
        objects = k8s_objects()
        self.assertEqual(set(objects), {"Secret", "ConfigMap", "Deployment"})
        spec, side, app = pod_spec(), sidecar(), app_container()
        self.assertEqual(side.get("restartPolicy"), "Always", "mongogate must be a native sidecar")
        self.assertEqual(spec["securityContext"].get("runAsNonRoot"), True)
        uid, _, gid = Dockerfile.all(RUNTIME_STAGE, "USER")[0].partition(":")
        self.assertEqual(str(spec["securityContext"].get("runAsUser")), uid, "runAsUser is not the image's USER")
        self.assertEqual(str(spec["securityContext"].get("runAsGroup")), gid or uid)
        for container in (side, app):
            with self.subTest(container=container["name"]):
                security = container["securityContext"]
                self.assertIs(security.get("readOnlyRootFilesystem"), True)
                self.assertIs(security.get("allowPrivilegeEscalation"), False)
                self.assertEqual(security["capabilities"]["drop"], ["ALL"])
                for kind in ("requests", "limits"):
                    self.assertTrue({"cpu", "memory"} <= set(container["resources"][kind]), kind)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            self.assertIn("httpGet", side[probe], probe)
        self.assertEqual(side["livenessProbe"]["httpGet"]["path"], "/healthz")
        self.assertEqual(side["readinessProbe"]["httpGet"]["path"], "/readyz")
        secret = objects["Secret"]["stringData"]
        self.assertTrue({"MONGODB_URI", "MASTER_ADMIN_MONGO_URI", "MONGOGATE_ADMIN_TOKEN"} <= set(secret))

    def test_k8s_volumes_config_and_writable_paths(self):
        spec, side = pod_spec(), sidecar()
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in side["volumeMounts"]}
        config_map = k8s_objects()["ConfigMap"]
        for mount in mounts.values():
            self.assertIn(mount["name"], volumes, f"volumeMount {mount['name']} has no volume")
        args = side["args"]
        config_path = Path(args[args.index("--config") + 1])
        mount = mounts.get(str(config_path.parent))
        self.assertIsNotNone(mount, "the --config file is not in a mounted volume")
        volume = volumes[mount["name"]]
        self.assertEqual(volume["configMap"]["name"], config_map["metadata"]["name"])
        self.assertIn(config_path.name, config_map["data"])
        # Everything mongogate writes must be on a writable volume: the root is read-only.
        config = yaml.safe_load(config_map["data"][config_path.name])
        writes = [config.get("registry", {}).get("cache_file"), config.get("port_file"),
                  config.get("admin", {}).get("port_file")]
        for path in filter(None, writes):
            with self.subTest(path=path):
                owner = [m for p, m in mounts.items() if path.startswith(p.rstrip("/") + "/")]
                self.assertTrue(owner, f"{path} is on the read-only root filesystem")
                self.assertFalse(owner[0].get("readOnly"), f"{path} is on a read-only mount")
                self.assertIn("emptyDir", volumes[owner[0]["name"]])

    def test_k8s_grace_period_covers_the_drain(self):
        config_map = k8s_objects()["ConfigMap"]["data"]
        config = yaml.safe_load(next(iter(config_map.values())))
        drain_ms = config.get("drain_timeout_ms", 10000)
        grace = pod_spec()["terminationGracePeriodSeconds"]
        # The grace period is one budget for the Pod: the app stops first, then the drain.
        self.assertGreaterEqual(grace, drain_ms / 1000 + 10,
                                f"terminationGracePeriodSeconds {grace} leaves under 10 s beside a "
                                f"{drain_ms} ms drain")

    def test_k8s_app_points_at_the_sidecar(self):
        side_env = container_env(sidecar(), {k: "x" for k in k8s_objects()["Secret"]["stringData"]})
        listen = host_port(side_env["MONGOGATE_LISTEN"])
        for name in ("MONGODB_URI", "MASTER_ADMIN_MONGO_URI"):
            with self.subTest(variable=name):
                uri = urlsplit(container_env(app_container(), {})[name])
                self.assertIn(uri.hostname, ("127.0.0.1", "localhost"))
                self.assertEqual(uri.port, listen[1], f"the app's {name} is not mongogate's port")

    def test_compose_services_are_consistent(self):
        compose = load_yaml_documents(DOCKER / "compose.yaml")[0]
        services = compose["services"]
        gate = services["mongogate"]
        context = (DOCKER / gate["build"]["context"]).resolve()
        self.assertEqual((context / gate["build"]["dockerfile"]).resolve(), (DOCKER / "Dockerfile").resolve())
        env = {**IMAGE_ENV, **gate.get("environment", {})}
        listening = {host_port(env["MONGOGATE_LISTEN"])[1], host_port(env["MONGOGATE_ADMIN_LISTEN"])[1]}
        published = {int(p.rsplit(":", 1)[1]) for p in gate.get("ports", [])}
        self.assertTrue(published and published <= listening, f"published {published}, listening {listening}")
        for name in ("MONGODB_URI", "MASTER_ADMIN_MONGO_URI"):
            uri = urlsplit(gate["environment"][name])
            self.assertIn(uri.hostname, services, f"mongogate's {name} names no service")
            self.assertTrue(services[uri.hostname]["image"].startswith("mongo:"))
            self.assertEqual(gate["depends_on"][uri.hostname]["condition"], "service_healthy")
        app = services["demo-app"]
        app_context = (DOCKER / app["build"]["context"]).resolve()
        app_dockerfile = Dockerfile(app_context / app["build"]["dockerfile"])
        self.assertIn("docker/demo_app.py", " ".join(Dockerfile.all(app_dockerfile.stage(0), "COPY")))
        for name in ("MONGODB_URI", "MASTER_ADMIN_MONGO_URI"):
            uri = urlsplit(app["environment"][name])
            self.assertEqual((uri.hostname, uri.port), ("mongogate", host_port(env["MONGOGATE_LISTEN"])[1]),
                             f"the demo app's {name} does not point at mongogate")
        self.assertEqual(app["depends_on"]["mongogate"]["condition"], "service_healthy")
        test = gate.get("healthcheck", {}).get("test")
        if test:  # overrides the image's; it must run a program the image has
            copied = {Path(c.split()[-1]).name for c in Dockerfile.all(RUNTIME_STAGE, "COPY")}
            self.assertEqual(test[0], "CMD")
            self.assertIn(test[1], copied)


class ProbeScript(unittest.TestCase):
    def test_a_silent_peer_fails_within_the_timeout(self):
        with socket.socket() as listener:  # accepts (backlog) but never answers
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            env = {**os.environ, "MONGOGATE_HTTP_ADDRESS": f"127.0.0.1:{listener.getsockname()[1]}",
                   "MONGOGATE_HTTP_TIMEOUT": "1"}
            started = time.monotonic()
            ran = subprocess.run([str(DOCKER / "mongogate-http"), "/healthz"], env=env,
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(ran.returncode, 2, ran.stdout + ran.stderr)
            self.assertLess(time.monotonic() - started, 5)

    def test_nothing_listening_fails(self):
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        env = {**os.environ, "MONGOGATE_HTTP_ADDRESS": f"127.0.0.1:{port}"}
        ran = subprocess.run([str(DOCKER / "mongogate-http"), "/healthz"], env=env,
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(ran.returncode, 2, ran.stdout + ran.stderr)
        self.assertIn("no answer", ran.stderr)


# --------------------------------------------------------------------------------------
# Run-time checks: the real binary, as each file starts it.

class RunningCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not in_netns():
            raise unittest.SkipTest("no private network namespace (unshare -rn): the fixed ports "
                                    "27017/9090 cannot be used safely")
        if not binary().exists():
            raise unittest.SkipTest(f"{binary()} is not built")
        cls.workdir = Path(tempfile.mkdtemp(prefix="mongogate-deploy-"))
        cls.upstreams = {}
        for name in ("main", "admin"):
            cls.upstreams[name] = harness.Upstream(name, cls.workdir).start()
        cls.processes = []

    @classmethod
    def tearDownClass(cls):
        for process in cls.processes:
            process.kill()
        for upstream in cls.upstreams.values():
            upstream.stop()
        shutil.rmtree(cls.workdir, ignore_errors=True)

    def start(self, argv: list[str], env: dict[str, str], name: str) -> Process:
        process = Process(argv, env, self.workdir, name)
        self.processes.append(process)
        return process

    def base_env(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")
        return {k: v for k, v in os.environ.items() if k in keep}


class KubernetesSidecar(RunningCase):
    def test_pod_as_declared(self):
        objects, side, app = k8s_objects(), sidecar(), app_container()
        secret = dict(objects["Secret"]["stringData"])
        # The Secret's connection strings name real clusters: point them at the mocks.
        secret["MONGODB_URI"] = with_host(secret["MONGODB_URI"], "127.0.0.1", self.upstreams["main"].port)
        secret["MASTER_ADMIN_MONGO_URI"] = with_host(secret["MASTER_ADMIN_MONGO_URI"], "127.0.0.1",
                                                     self.upstreams["admin"].port)
        env = {**self.base_env(), **container_env(side, secret)}

        # Mounted volumes become directories here; paths in args and config follow them.
        remap = {}
        volumes = {v["name"]: v for v in pod_spec()["volumes"]}
        for mount in side["volumeMounts"]:
            local = self.workdir / ("vol-" + mount["name"])
            local.mkdir(exist_ok=True)
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                self.assertEqual(volume["configMap"]["name"], objects["ConfigMap"]["metadata"]["name"])
                for key, text in objects["ConfigMap"]["data"].items():
                    (local / key).write_text(text)
            remap[mount["mountPath"]] = str(local)

        def localize(text: str) -> str:
            for mount_path, local in remap.items():
                text = text.replace(mount_path.rstrip("/") + "/", local + "/")
            return text

        for path in (self.workdir / ("vol-" + m["name"]) for m in side["volumeMounts"]):
            for file in path.glob("*.yaml"):
                file.write_text(localize(file.read_text()))
        args = [localize(a) for a in side["args"]]

        check = subprocess.run(image_command(["mongogate", *args, "--check-config"]), env=env,
                               capture_output=True, text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertIn("configuration OK", check.stdout)
        self.assertNotIn("warning", check.stderr, "the ConfigMap + env give start-up warnings")

        process = self.start(image_command(["mongogate", *args]), env, "k8s-sidecar")
        admin_port = probe_port(side, side["livenessProbe"]["httpGet"]["port"])
        process.wait_listening(POD_IP, admin_port)
        # The kubelet probes the Pod IP, on the declared path and port.
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            with self.subTest(probe=probe):
                get = side[probe]["httpGet"]
                wait_status(POD_IP, probe_port(side, get["port"]), get["path"], 200)
        annotations = objects["Deployment"]["spec"]["template"]["metadata"]["annotations"]
        status, body = http_get(POD_IP, int(annotations["prometheus.io/port"]), annotations["prometheus.io/path"])
        self.assertEqual(status, 200)
        self.assertIn(b"mongogate_requests_total", body)

        # The app's unchanged connection strings reach mongogate and, through it, the right upstream.
        import pymongo
        app_env = container_env(app, {})
        main_uri, admin_uri = app_env["MONGODB_URI"], app_env["MASTER_ADMIN_MONGO_URI"]
        with contextlib.closing(pymongo.MongoClient(main_uri, serverSelectionTimeoutMS=5000)) as client:
            client.get_default_database()["users"].insert_one({"email": "a@example.com"})
        with contextlib.closing(pymongo.MongoClient(admin_uri, serverSelectionTimeoutMS=5000)) as client:
            client.get_default_database()["admins"].insert_one({"username": "owner"})
        self.assertEqual(len(self.upstreams["main"].find_all("main_db", "users")), 1)
        self.assertEqual(len(self.upstreams["admin"].find_all("masteradmin", "admins")), 1)

        # preStop, exactly as declared, with the container's environment.
        hook = side["lifecycle"]["preStop"]["exec"]["command"]
        ran = subprocess.run(image_command(hook), env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(ran.returncode, 0, ran.stdout + ran.stderr)
        ready = side["readinessProbe"]["httpGet"]
        self.assertEqual(http_get(POD_IP, probe_port(side, ready["port"]), ready["path"])[0], 503)
        live = side["livenessProbe"]["httpGet"]
        self.assertEqual(http_get(POD_IP, probe_port(side, live["port"]), live["path"])[0], 200)
        with contextlib.closing(pymongo.MongoClient(main_uri, serverSelectionTimeoutMS=5000)) as client:
            self.assertEqual(client.get_default_database()["users"].count_documents({}), 1,
                             "after preStop the app must still be served until SIGTERM")

        grace = pod_spec()["terminationGracePeriodSeconds"]
        status, body = http_get(POD_IP, admin_port, "/v1/config")
        self.assertEqual(status, 200)
        self.assertGreaterEqual(grace, json.loads(body)["drain_timeout_ms"] / 1000 + 10,
                                "the effective drain timeout leaves under 10 s of the grace period")
        code, seconds = process.terminate(timeout=grace)
        self.assertEqual(code, 0, process.text()[-3000:])
        self.assertLess(seconds, grace)
        self.assertIn("drain requested", process.text())


class DockerImage(RunningCase):
    def test_entrypoint_ports_and_healthcheck(self):
        env = {**self.base_env(), **IMAGE_ENV,
               "MONGODB_URI": f"mongodb://127.0.0.1:{self.upstreams['main'].port}/main_db"}
        entry = Dockerfile.exec_form(Dockerfile.all(RUNTIME_STAGE, "ENTRYPOINT")[0])
        cmd = Dockerfile.all(RUNTIME_STAGE, "CMD")
        process = self.start(image_command(entry + (Dockerfile.exec_form(cmd[0]) if cmd else [])), env, "image")
        # Reached from outside the container: on its address, every EXPOSEd port.
        for rest in Dockerfile.all(RUNTIME_STAGE, "EXPOSE"):
            for port in rest.split():
                process.wait_listening(POD_IP, int(port.split("/")[0]))
        check = Dockerfile.all(RUNTIME_STAGE, "HEALTHCHECK")[0]
        command = image_command(Dockerfile.exec_form(check.split("CMD", 1)[1]))
        healthy = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(healthy.returncode, 0, healthy.stdout + healthy.stderr)
        # The probe tells answers apart: any non-2xx status is a failure (exit 1).
        probe = image_command(["mongogate-http"])
        for args, status in ((["/nope"], "404"), (["POST", "/v1/drain"], "403"), (["POST", "/healthz"], "405")):
            with self.subTest(request=args):
                ran = subprocess.run(probe + args, env=env, capture_output=True, text=True, timeout=30)
                self.assertEqual(ran.returncode, 1, ran.stdout + ran.stderr)
                self.assertTrue(ran.stdout.startswith(f"HTTP/1.1 {status} "), ran.stdout)
        code, _ = process.terminate(timeout=30)
        self.assertEqual(code, 0)
        # Once it is gone, the same healthcheck must fail.
        dead = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
        self.assertNotEqual(dead.returncode, 0)


class ComposeDemo(RunningCase):
    def test_demo_app_through_mongogate(self):
        services = load_yaml_documents(DOCKER / "compose.yaml")[0]["services"]
        gate, app = services["mongogate"], services["demo-app"]
        mocks = {}
        for name in ("MONGODB_URI", "MASTER_ADMIN_MONGO_URI"):
            host = urlsplit(gate["environment"][name]).hostname
            mocks[host] = self.upstreams["main" if name == "MONGODB_URI" else "admin"]
        env = {**self.base_env(), **IMAGE_ENV, **gate["environment"]}
        for name in ("MONGODB_URI", "MASTER_ADMIN_MONGO_URI"):
            env[name] = with_host(env[name], "127.0.0.1", mocks[urlsplit(env[name]).hostname].port)
        process = self.start(image_command(["mongogate"]), env, "compose")
        process.wait_listening("127.0.0.1", host_port(env["MONGOGATE_LISTEN"])[1])
        # docker stop waits stop_grace_period before SIGKILL: it must cover the drain.
        status, body = http_get("127.0.0.1", host_port(env["MONGOGATE_ADMIN_LISTEN"])[1], "/v1/config")
        self.assertEqual(status, 200)
        drain_ms = json.loads(body)["drain_timeout_ms"]
        grace = gate["stop_grace_period"]
        self.assertRegex(grace, r"^\d+s$")
        self.assertGreater(int(grace[:-1]), drain_ms / 1000, "stop_grace_period is shorter than the drain")
        # The service's healthcheck gates the demo app: it must pass once mongogate is ready.
        test = gate["healthcheck"]["test"][1:]
        wait_status("127.0.0.1", host_port(env["MONGOGATE_ADMIN_LISTEN"])[1], "/readyz", 200)
        healthy = subprocess.run(image_command(test), env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(healthy.returncode, 0, healthy.stdout + healthy.stderr)

        app_env = {**self.base_env(), **{k: str(v) for k, v in app["environment"].items()}}
        for name in ("MONGODB_URI", "MASTER_ADMIN_MONGO_URI"):
            uri = urlsplit(app_env[name])
            self.assertEqual(uri.hostname, "mongogate")
            app_env[name] = with_host(app_env[name], "127.0.0.1", uri.port)
        command = Dockerfile.exec_form(Dockerfile.all(Dockerfile(DOCKER / "demo-app.Dockerfile").stage(0), "CMD")[0])
        self.assertEqual(command[1], "/app/demo_app.py")
        for attempt in range(2):  # the second run must find the first run's stores
            ran = subprocess.run([harness.PYTHON, str(DOCKER / "demo_app.py")], env=app_env,
                                 capture_output=True, text=True, timeout=120)
            self.assertEqual(ran.returncode, 0, ran.stdout + ran.stderr)
        stores = int(app_env["DEMO_STORES"])
        main = self.upstreams["main"]
        registry = main.find_all("main_db", "stores", {"prefix": {"$regex": "^demo"}})
        self.assertEqual(len(registry), stores)
        for store in registry:
            physical = f"pos_db_{store['databaseId']}"
            with self.subTest(store=store["prefix"]):
                self.assertEqual(len(main.find_all(physical, f"{store['prefix']}_products")), 3)
                self.assertEqual(main.find_all("main_db", f"{store['prefix']}_products"), [],
                                 "store data reached main_db: it was not routed")
        self.assertEqual(len(self.upstreams["admin"].find_all("masteradmin", "admins")), 1)
        code, _ = process.terminate(timeout=30)
        self.assertEqual(code, 0)


if __name__ == "__main__":
    unittest.main()
