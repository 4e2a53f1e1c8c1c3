#!/usr/bin/python3
"""chroot_image.py — build docker/Dockerfile's two stages without a container engine.

Promise: each stage's FROM becomes a fresh Debian 12 minbase root made by mmdebstrap (the
official debian:bookworm images are minbase-like; -slim also drops documentation), the
stage's RUN instructions run in it with /bin/sh -c as Docker runs them, COPY of the build
context is the repository's tracked and untracked-but-not-ignored files, and
COPY --from=build copies from the first root. Then the runtime root is exercised: every
library of the binary resolves, and the ENTRYPOINT passes --check-config as the USER.
It needs root, network access to deb.debian.org and ~20 minutes; ctest does not run it.

  sudo tests/deploy/chroot_image.py [WORKDIR]     (default /tmp/mongogate-chroot)
"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["MONGOGATE_DEPLOY_NETNS"] = "0"  # importing test_deploy must not re-exec
import test_deploy as td  # noqa: E402


def stage_root(stage, root: Path, hooks: list[str]) -> None:
    suite = stage[0][1].split()[0].split(":")[1].replace("-slim", "")
    if root.exists():
        shutil.rmtree(root)
    cmd = ["mmdebstrap", "--variant=minbase", *[f"--customize-hook={h}" for h in hooks],
           suite, str(root), "http://deb.debian.org/debian"]
    print("+", " ".join(shlex.quote(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True)


def run_hooks(stage, workdir: Path, name: str) -> list[str]:
    """customize hooks that run the stage's RUN lines in its WORKDIR (hooks run in order)."""
    hooks, cwd = [], "/"
    for index, (keyword, rest) in enumerate(stage):
        if keyword == "WORKDIR":
            cwd = rest
            hooks.append(f'mkdir -p "$1{rest}"')
        elif keyword == "COPY" and not rest.startswith("--from") and rest.split() == [".", "."]:
            archive = workdir / "context.tar"
            files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=td.ROOT,
                                   capture_output=True, check=True).stdout.split(b"\0")
            keep = [f for f in files if f and not f.startswith((b"build", b".git"))]
            subprocess.run(["tar", "-cf", str(archive), "--null", "-T", "-"], cwd=td.ROOT,
                           input=b"\0".join(keep), check=True)
            hooks.append(f'tar -C "$1{cwd}" -xf {archive}')
        elif keyword == "RUN":
            script = workdir / f"{name}-run-{index}.sh"
            script.write_text(f"set -e\ncd {cwd}\n{rest}\n")
            hooks.append(f'cp {script} "$1/tmp/run.sh" && chroot "$1" /bin/sh /tmp/run.sh')
    return hooks


def main() -> int:
    workdir = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/mongogate-chroot")
    workdir.mkdir(parents=True, exist_ok=True)
    build, runtime = td.BUILD_STAGE, td.RUNTIME_STAGE
    out = workdir / "out"
    out.mkdir(exist_ok=True)
    copies = [c for c in td.Dockerfile.all(runtime, "COPY") if c.startswith("--from=build")]
    sources = [c.split()[1] for c in copies]
    hooks = run_hooks(build, workdir, "build")
    hooks += [f'cp "$1{src}" {out}/' for src in sources]
    stage_root(build, workdir / "build-root", hooks)

    hooks = [h for h in run_hooks(runtime, workdir, "runtime")]
    # COPY instructions of the runtime stage, in order, before its RUN lines are irrelevant
    # here: the RUN lines install packages and users; the files land afterwards.
    for copy in td.Dockerfile.all(runtime, "COPY"):
        words = copy.split()
        if words[0].startswith("--from="):
            hooks.append(f'cp {out}/{Path(words[1]).name} "$1{words[2]}"')
        else:
            hooks.append(f'cp {td.ROOT / words[0]} "$1{words[1]}"')
    stage_root(runtime, workdir / "runtime-root", hooks)

    root = workdir / "runtime-root"
    entry = td.Dockerfile.exec_form(td.Dockerfile.all(runtime, "ENTRYPOINT")[0])
    user = td.Dockerfile.all(runtime, "USER")[0]
    ldd = subprocess.run(["chroot", str(root), "ldd", f"/usr/local/bin/{entry[0]}"],
                         capture_output=True, text=True, check=True).stdout
    print(ldd)
    if "not found" in ldd:
        print("FAIL: unresolved libraries in the runtime root")
        return 1
    env = ["env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin", "MONGODB_URI=mongodb://db.example:27017/main_db",
           *[f"{k}={v}" for k, v in td.IMAGE_ENV.items()]]
    check = subprocess.run(["chroot", f"--userspec={user}", str(root), *env, *entry, "--check-config"],
                           capture_output=True, text=True)
    print(check.stdout, check.stderr)
    size = subprocess.run(["du", "-sh", "--exclude=proc", "--exclude=dev", "--exclude=sys", str(root)],
                          capture_output=True, text=True).stdout.split()[0]
    print(f"runtime root: {size}; binary {os.path.getsize(root / 'usr/local/bin' / entry[0]) // 1024} KiB")
    return 0 if check.returncode == 0 and "configuration OK" in check.stdout else 1


if __name__ == "__main__":
    sys.exit(main())
