#!/usr/bin/env python3
"""The registry build cache: a cold two-platform build with --cache-to, then the same build with --cache-from
on a fresh store, as a second CI run on a fresh machine would; the rebuild against the cold build.

Each round, in one run, on podman stores that start empty (each its own `podman system service`):
- cold: `imgfront build --platform linux/amd64,linux/arm64 --cache-to REPO` on store A;
- rebuild: the same build with `--cache-from REPO` on store B, which must take every step from the registry
  (the bench fails if a step ran again);
- plain: the cold build without a cache on store C, for what --cache-to costs.

Every round has a repository of its own, so nothing is cached from an earlier round. The workload is a busybox
image with CPU-bound RUN steps (md5 of 1.5 GiB of zeros, about 4 s natively, 2.5-3x that under qemu for arm64),
written without an ARG inside a stage, which podman 4.3 never looks up in a registry cache. The registry is
Debian's docker-registry on loopback, without TLS.

With `--podman 5`, each store is a node of Debian 13's podman 5.x in a container (the tests' `podman5` nodes,
tests/integration/services/podman_other.py); the default is the host's podman.

    .venv/bin/python bench/bench_cache.py [--rounds 3] [--podman host|5] [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import record  # noqa: E402
from bench.bench_push import REGISTRY_CONFIG, free_port, wait_for  # noqa: E402
from bench.bench_transfer import store  # noqa: E402

BUSYBOX = Path(os.environ.get("IMGFRONT_BUSYBOX_DIR", "/var/cache/imgfront/busybox"))
PLATFORMS = "linux/amd64,linux/arm64"
CONTAINERFILE = """\
ARG TARGETARCH
FROM scratch AS base-amd64
COPY busybox-amd64 /bin/busybox
FROM scratch AS base-arm64
COPY busybox-arm64 /bin/busybox
FROM base-${TARGETARCH}
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN h=$(uname -m); for i in 1 2 3; do \\
      h=$({ echo $h; dd if=/dev/zero bs=1M count=256 2>/dev/null; } | md5sum); done; echo "$h" > /first
RUN h=$(cat /first); for i in 1 2 3; do \\
      h=$({ echo $h; dd if=/dev/zero bs=1M count=256 2>/dev/null; } | md5sum); done; echo "$(uname -m) $h" > /result
CMD ["cat", "/result"]
"""
STEPS = 5  # per platform: COPY, RUN --install, RUN, RUN, CMD
KINDS = ("cold", "rebuild", "plain")


@contextlib.contextmanager
def host_node(base: Path) -> Iterator[dict[str, str]]:
    """The host's podman serving a store of its own under `base`; imgfront's environment for it."""
    env = store(base)
    socket = base / "podman.sock"
    process = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(socket.exists, f"podman service in {base}")
        yield {**env, "CONTAINER_HOST": f"unix://{socket}"}
    finally:
        process.terminate()
        process.wait(timeout=30)
        subprocess.run(["podman", "system", "reset", "--force"], env=env, capture_output=True, check=False)


@contextlib.contextmanager
def podman5_nodes(work: Path) -> Iterator[tuple[str, object]]:
    """A factory of podman 5.x nodes, each a container with its store under its own folder (as the tests')."""
    sys.path.insert(0, str(ROOT / "tests"))
    from integration.services.podman_other import OtherPodman

    (work / "podman5-outer").mkdir()
    other = OtherPodman(work / "podman5-outer", mounts=[work])
    other.prepare()

    @contextlib.contextmanager
    def node(base: Path) -> Iterator[dict[str, str]]:
        base.mkdir(parents=True)
        socket = base / "podman.sock"
        with other.node(base, f"unix://{socket}"):
            wait_for(socket.exists, f"podman 5 service in {base}")
            yield {
                **{k: v for k, v in os.environ.items() if k != "CONTAINER_CONNECTION"},
                "CONTAINER_HOST": f"unix://{socket}",
            }

    try:
        yield other.version, node
    finally:
        other.close()


def build(env: dict[str, str], ctx: Path, tag: str, cache: list[str]) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "imgfront", "build", "--platform", PLATFORMS, "-t", tag, "--progress", "plain"]
    start = time.monotonic()
    done = subprocess.run([*cmd, *cache, str(ctx)], env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return elapsed, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--podman", choices=("host", "5"), default="host", help="the host's podman, or 5.x nodes")
    parser.add_argument("--record", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="imgfront-bench-cache-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        if args.podman == "5":
            podman_version, make_node = stack.enter_context(podman5_nodes(work))
            podman_version = f"podman version {podman_version} (nodes in containers)"
        else:
            make_node = host_node
            podman_version = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.strip()
        port = free_port()
        (work / "registry.yml").write_text(REGISTRY_CONFIG.format(port=port, root=work / "registry"))
        serve = ["docker-registry", "serve", str(work / "registry.yml")]
        registry = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        ctx = work / "ctx"
        ctx.mkdir()
        (ctx / "Containerfile").write_text(CONTAINERFILE)
        for arch in ("amd64", "arm64"):
            shutil.copy(BUSYBOX / f"busybox-{arch}", ctx / f"busybox-{arch}")
        try:
            wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/").status == 200, "docker-registry")
            for round_ in range(args.rounds):
                repo = f"127.0.0.1:{port}/bench/cache-{round_}"
                tls = ["--tls-verify=false"]
                for kind, cache in (
                    ("cold", ["--cache-to", repo, *tls]),
                    ("rebuild", ["--cache-from", repo, *tls]),
                    ("plain", []),
                ):
                    with make_node(work / f"{kind}-{round_}") as env:  # type: ignore[operator]
                        seconds, log = build(env, ctx, f"localhost/bench-cache-{kind}:1", cache)
                    pulled = log.count("Cache pulled from remote")
                    if kind == "rebuild" and pulled != 2 * STEPS:
                        raise SystemExit(f"bench: the rebuild took {pulled} of {2 * STEPS} steps from the cache\n{log}")
                    times[kind].append(seconds)
                    print(f"round {round_ + 1}: {kind} {seconds:.2f} s", file=sys.stderr)
        finally:
            registry.terminate()
            registry.wait(timeout=30)
    medians = {kind: statistics.median(t) for kind, t in times.items()}
    ratios = [r / c for r, c in zip(times["rebuild"], times["cold"], strict=True)]
    figures = {
        "seconds": {kind: round(m, 2) for kind, m in medians.items()},
        "runs": {kind: [round(x, 2) for x in t] for kind, t in times.items()},
        "rebuild_over_cold": round(statistics.median(ratios), 3),
        "rebuild_over_cold_each_round": [round(r, 3) for r in ratios],
        "cold_over_plain": round(medians["cold"] / medians["plain"], 2),
    }
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {podman_version}, kernel {platform.release()}"
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"cache-{args.podman}.json").write_text(
        json.dumps({"machine": machine, "figures": figures}, indent=2) + "\n"
    )
    s = figures["seconds"]
    lines = [
        f"\n## Registry build cache: a rebuild with --cache-from on a fresh store vs the cold build ({PLATFORMS})",
        f"{time.strftime('%Y-%m-%d')}; {machine}; `bench/bench_cache.py --rounds {args.rounds} "
        f"--podman {args.podman}`; medians of the rounds, each round's three builds on empty stores in one run.\n",
        "| build | seconds | ratio to the cold build |",
        "| --- | --- | --- |",
        f"| cold, `--cache-to` | {s['cold']} | 1.00 |",
        f"| rebuild on a fresh store, `--cache-from` | {s['rebuild']} | **{figures['rebuild_over_cold']}** |",
        f"| cold without a cache (what `--cache-to` costs) | {s['plain']} | {round(s['plain'] / s['cold'], 2)} |",
    ]
    print("\n".join(lines))
    if args.record:
        record(lines)


if __name__ == "__main__":
    main()
