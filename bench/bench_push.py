#!/usr/bin/env python3
"""Pushing a two-platform build to a registry: imgfront from here, imgfront from the nodes, and podman.

One run, alternating, each round with fresh random layers so that the registry holds none of them yet:
- podman: `podman build --platform linux/amd64,linux/arm64 --manifest L` then `podman manifest push --all`,
  on one store (what a user without a farm does);
- imgfront --push (local): the same builds on the same store, in parallel; the engine pushes the list;
- imgfront --push (2 nodes): two podman nodes build one platform each; the images come home, the list is pushed
  from here;
- imgfront --push-from-nodes (2 nodes): the same nodes push their images themselves; the index is written here.

Each platform's image is one layer of random data (FROM scratch, COPY), so no emulation runs and the time is
the build's copy plus the transfers. Both tools build with --no-cache: the layer cache of podman 4.3 ignores the
platform of FROM scratch stages, which would make imgfront build a platform twice (it checks) and podman not.
The registry is Debian's docker-registry on loopback, without TLS.

    .venv/bin/python bench/bench_push.py [--size-mb 128] [--rounds 3] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import record  # noqa: E402
from bench.bench_transfer import store  # noqa: E402

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
http:
  addr: 127.0.0.1:{port}
storage:
  filesystem:
    rootdirectory: {root}
"""
WAYS = (
    "podman build + manifest push",
    "imgfront --push (local)",
    "imgfront --push (2 nodes)",
    "imgfront --push-from-nodes (2 nodes)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start")


def fresh_context(ctx: Path, size_mb: int) -> None:
    """New random layers for both platforms, so that nothing is in the registry or cache yet."""
    for arch in ("amd64", "arm64"):
        with (ctx / f"blob-{arch}").open("wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(1 << 20))


def run(cmd: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=128, help="MiB of random data per platform")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()
    imgfront = [sys.executable, "-m", "imgfront"]
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory(prefix="imgfront-bench-push-") as tmp:
        work = Path(tmp)
        port = free_port()
        (work / "registry.yml").write_text(REGISTRY_CONFIG.format(port=port, root=work / "registry"))
        registry = subprocess.Popen(
            ["docker-registry", "serve", str(work / "registry.yml")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        envs = {name: store(work / name) for name in ("home", "amd", "arm")}
        services = []
        try:
            wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/").status == 200, "docker-registry")
            for name in ("home", "amd", "arm"):
                sock = work / f"{name}.sock"
                services.append(
                    subprocess.Popen(
                        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
                        env=envs[name],
                        stderr=subprocess.DEVNULL,
                    )
                )
                wait_for(sock.exists, f"podman service {name}")
            home = {**envs["home"], "CONTAINER_HOST": f"unix://{work / 'home.sock'}"}
            ctx = work / "ctx"
            ctx.mkdir()
            (ctx / "Containerfile").write_text("FROM scratch\nARG TARGETARCH\nCOPY blob-${TARGETARCH} /blob\n")
            nodes = ["--no-local", "--node", f"unix://{work / 'amd.sock'}", "--node", f"unix://{work / 'arm.sock'}"]
            repo = f"127.0.0.1:{port}/bench/app"
            platforms = "linux/amd64,linux/arm64"
            for round_ in range(args.rounds):
                for way in WAYS:
                    fresh_context(ctx, args.size_mb)
                    tag = f"{repo}:way{WAYS.index(way)}-round{round_}"
                    if way.startswith("podman"):
                        seconds = run(
                            [
                                "podman",
                                "build",
                                "-q",
                                "--no-cache",
                                "--platform",
                                platforms,
                                "--manifest",
                                "localhost/bench:l",
                                str(ctx),
                            ],
                            envs["home"],
                        )
                        seconds += run(
                            [
                                "podman",
                                "manifest",
                                "push",
                                "--all",
                                "--tls-verify=false",
                                "localhost/bench:l",
                                f"docker://{tag}",
                            ],
                            envs["home"],
                        )
                        subprocess.run(
                            ["podman", "manifest", "rm", "localhost/bench:l"], env=envs["home"], capture_output=True
                        )
                    else:
                        extra = ["--push-from-nodes"] if "from-nodes" in way else []
                        extra += nodes if "2 nodes" in way else []
                        seconds = run(
                            [
                                *imgfront,
                                "build",
                                "--no-cache",
                                "--platform",
                                platforms,
                                "-t",
                                tag,
                                "--push",
                                *extra,
                                "--tls-verify=false",
                                "--progress",
                                "quiet",
                                str(ctx),
                            ],
                            home,
                        )
                    times[way].append(seconds)
                    print(f"round {round_ + 1}: {way}: {seconds:.2f} s", flush=True)
        finally:
            for service in services:
                service.terminate()
                service.wait()
            registry.terminate()
            registry.wait()
            for env in envs.values():
                subprocess.run(["podman", "system", "reset", "--force"], env=env, capture_output=True)
            shutil.rmtree(work / "registry", ignore_errors=True)
    medians = {way: round(statistics.median(t), 2) for way, t in times.items()}
    base = medians[WAYS[0]]
    lines = [
        f"\n## Push: a two-platform build of {args.size_mb} MiB per platform into a registry",
        f"{time.strftime('%Y-%m-%d')}; `bench/bench_push.py --size-mb {args.size_mb} --rounds {args.rounds}`; "
        "median of the rounds, all three ways alternating in one run.\n",
        "| way | seconds | ratio to podman |",
        "| --- | --- | --- |",
        *(f"| {way} | {medians[way]} | {medians[way] / base:.2f} |" for way in WAYS),
    ]
    print("\n".join(lines))
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "push.json").write_text(json.dumps({"medians_s": medians, "runs": times}, indent=2))
    if args.record:
        record(lines)


if __name__ == "__main__":
    main()
