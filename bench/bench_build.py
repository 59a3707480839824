#!/usr/bin/env python3
"""Time `imgfront build` against `podman build --platform a,b --manifest` on the reference workload.

Both tools run in the same invocation, alternating, on one private storage (never the user's), so the
ratio holds on a noisy machine. Cold runs use --no-cache; cached runs rebuild the unchanged context.
The figures go to bench/out/build.json, and a section is appended to bench/RESULTS.md with --record.

With --engine podman5 both run against one podman 5.x node instead (bench/podman5.py, the tests' node in a
container): imgfront builds through the node's service, the baseline is the node's own podman CLI, and the
figures go to bench/out/build-podman5.json.

    .venv/bin/python bench/bench_build.py [--engine podman4|podman5] [--store-images N] [--rounds 3] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import record  # noqa: E402
from bench.filler import fill_store  # noqa: E402
from bench.podman5 import aarch64_handler, host_podman_version, podman5_node  # noqa: E402

BUSYBOX = Path(os.environ.get("IMGFRONT_BUSYBOX_DIR", "/var/cache/imgfront/busybox"))
PLATFORMS = "linux/amd64,linux/arm64"
CONF = '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\nruntime = "runc"\n'


def private_env(work: Path) -> dict[str, str]:
    (work / "containers.conf").write_text(CONF)
    (work / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{work}/root"\nrunroot = "{work}/runroot"\n'
    )
    # No CONTAINER_HOST: imgfront starts (and keeps) its private service, as for a user without podman.socket.
    # Bytecode is written, as an installed imgfront has it; this machine's shell sets PYTHONDONTWRITEBYTECODE.
    drop = ("CONTAINER_HOST", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(CONTAINERS_CONF=str(work / "containers.conf"), CONTAINERS_STORAGE_CONF=str(work / "storage.conf"))
    return env


def stop_kept_service(env: dict[str, str]) -> None:
    """The private service imgfront kept for this store, stopped by its PID before the store goes."""
    from imgfront.engines.service import PID_FILE, kept_folder, settings_key

    base, podman = kept_folder(env), shutil.which("podman")
    if base is None or podman is None:
        return
    folder = base / f"svc-{settings_key(podman, env)}"
    try:
        pid = int((folder / PID_FILE).read_text())
        if os.fsencode(folder / "podman.sock") in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, 15)
    except (OSError, ValueError):
        pass


def context(work: Path) -> Path:
    ctx = work / "context"
    shutil.copytree(ROOT / "containerfiles" / "reference", ctx, ignore=shutil.ignore_patterns("busybox-*"))
    for arch in ("amd64", "arm64"):
        shutil.copy(BUSYBOX / f"busybox-{arch}", ctx / f"busybox-{arch}")
    return ctx


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.monotonic()
    result = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    return elapsed


def commands(ctx: Path, cold: bool, podman_cli: tuple[str, ...] = ("podman",)) -> dict[str, list[str]]:
    no_cache = ["--no-cache"] if cold else []
    imgfront = [
        sys.executable,
        "-m",
        "imgfront",
        "build",
        "--platform",
        PLATFORMS,
        "-t",
        "localhost/bench-imgfront:1",
        "--progress",
        "quiet",
        *no_cache,
        str(ctx),
    ]
    podman = [
        *podman_cli,
        "build",
        "--platform",
        PLATFORMS,
        "--manifest",
        "localhost/bench-podman:1",
        *no_cache,
        str(ctx),
    ]
    return {"imgfront": imgfront, "podman": podman}


# The limit of this machine for a cold build: its slowest platform (arm64, emulated) built alone. The row pairs
# imgfront's cold two-platform build with it (goal: at most 1.05).
SLOWEST = "linux/arm64"
SLOWEST_ROW = f"cold, against podman's {SLOWEST} alone"


def slowest_alone(ctx: Path, podman_cli: tuple[str, ...] = ("podman",)) -> list[str]:
    """podman's cold build of the slowest platform alone, untagged."""
    return [*podman_cli, "build", "--platform", SLOWEST, "--no-cache", "-q", str(ctx)]


def measure_podman4(rounds: int, store_images: int = 0) -> dict[str, dict[str, list[float]]]:
    """The rounds on the host's podman: one private store, imgfront keeping its own private service.

    With `store_images`, the store first gets that many small images (bench/filler.py), untimed.
    """
    with tempfile.TemporaryDirectory(prefix="imgfront-bench-") as tmp:
        work = Path(tmp)
        env, ctx = private_env(work), context(work)
        fill_store(env, store_images)
        times: dict[str, dict[str, list[float]]] = {"cold": {}, "cached": {}, "cached, no kept service": {}}
        fresh = {**env, "IMGFRONT_SERVICE_LINGER": "0"}  # a run that finds no service: it starts its own
        alone: list[float] = []
        try:
            for round_ in range(rounds):
                for kind in times:
                    cmds = commands(ctx, cold=kind == "cold")
                    order = list(cmds) if round_ % 2 == 0 else list(reversed(cmds))  # alternate who goes first
                    for tool in order:
                        # podman --manifest appends to an existing list; start each run from none, untimed.
                        subprocess.run(
                            ["podman", "manifest", "rm", "localhost/bench-podman:1"], env=env, capture_output=True
                        )
                        if kind == "cached, no kept service" and tool == "imgfront":
                            stop_kept_service(env)
                            times[kind].setdefault(tool, []).append(timed(cmds[tool], fresh))
                        else:
                            times[kind].setdefault(tool, []).append(timed(cmds[tool], env))
                alone.append(timed(slowest_alone(ctx), env))
        finally:
            stop_kept_service(env)
            subprocess.run(["podman", "system", "reset", "--force"], env=env, capture_output=True)
    times[SLOWEST_ROW] = {"imgfront": times["cold"]["imgfront"], "podman": alone}
    return times


def measure_podman5(work: Path, rounds: int) -> tuple[dict[str, dict[str, list[float]]], str]:
    """The rounds against one podman 5.x node: imgfront through its service, the baseline its own CLI.

    The context lies in a folder the node sees at the same path, which its CLI needs. There is no private
    service for imgfront to keep (it talks to the node's), so the "no kept service" run is left out.
    """
    if aarch64_handler() is None:
        sys.exit("bench: no qemu-aarch64 binfmt_misc handler with flag F, so the node cannot build arm64: make setup")
    shared = work / "shared"
    shared.mkdir()
    ctx = context(shared)
    times: dict[str, dict[str, list[float]]] = {"cold": {}, "cached": {}}
    alone: list[float] = []
    with podman5_node(work, mounts=[shared]) as node:
        drop = ("PYTHONDONTWRITEBYTECODE",)
        imgfront_env = {k: v for k, v in node.env.items() if k not in drop}
        for round_ in range(rounds):
            for kind in times:
                cmds = commands(ctx, cold=kind == "cold", podman_cli=node.cli)
                order = list(cmds) if round_ % 2 == 0 else list(reversed(cmds))
                for tool in order:
                    subprocess.run(
                        [*node.cli, "manifest", "rm", "localhost/bench-podman:1"], env=node.cli_env, capture_output=True
                    )
                    env = imgfront_env if tool == "imgfront" else node.cli_env
                    times[kind].setdefault(tool, []).append(timed(cmds[tool], env))
            alone.append(timed(slowest_alone(ctx, node.cli), node.cli_env))
        version = node.version
    times[SLOWEST_ROW] = {"imgfront": times["cold"]["imgfront"], "podman": alone}
    return times, version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    parser.add_argument(
        "--engine",
        choices=("podman4", "podman5"),
        default="podman4",
        help="podman4: the host's podman on a private store; podman5: a podman 5.x node in a container",
    )
    parser.add_argument(
        "--store-images",
        type=int,
        default=0,
        help="podman4 only: fill the private store with this many small images first (a user's full store)",
    )
    args = parser.parse_args()
    if args.store_images and args.engine != "podman4":
        parser.error("--store-images is for --engine podman4")
    node_version = ""
    if args.engine == "podman5":
        with tempfile.TemporaryDirectory(prefix="imgfront-bench-") as tmp:
            times, node_version = measure_podman5(Path(tmp), args.rounds)
    else:
        times = measure_podman4(args.rounds, args.store_images)
    figures = {
        kind: {
            "imgfront_s": round(statistics.median(t["imgfront"]), 2),
            "podman_s": round(statistics.median(t["podman"]), 2),
            "ratio": round(statistics.median(t["imgfront"]) / statistics.median(t["podman"]), 2),
            "runs": {tool: [round(x, 2) for x in xs] for tool, xs in t.items()},
        }
        for kind, t in times.items()
    }
    podman_version = host_podman_version()
    if args.engine == "podman5":
        podman_version = f"podman {node_version} node in a container of the host's {podman_version}"
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {podman_version}, kernel {platform.release()}"
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    name = "build.json" if args.engine == "podman4" else f"build-{args.engine}.json"
    if args.store_images:
        name = f"build-full-{args.store_images}.json"
    (out / name).write_text(json.dumps({"machine": machine, "figures": figures}, indent=2) + "\n")
    on = "" if args.engine == "podman4" else f" on podman {node_version}"
    on += " on a full store" if args.store_images else ""
    store = f"{args.store_images} images besides the build" if args.store_images else "fresh"
    lines = [
        f"\n## Build{on}: imgfront vs podman build --platform {PLATFORMS} --manifest",
        f"{time.strftime('%Y-%m-%d')}; {machine}; reference workload `containerfiles/reference`; "
        f"store: {store}; "
        f"median of {args.rounds} alternating rounds in one run.\n",
        "| run | imgfront (s) | podman (s) | ratio |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {k} | {f['imgfront_s']} | {f['podman_s']} | {f['ratio']} |" for k, f in figures.items()]
    print("\n".join(lines))
    if args.record:
        record(lines)


if __name__ == "__main__":
    main()
