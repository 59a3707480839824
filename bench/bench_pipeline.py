#!/usr/bin/env python3
"""Time `imgfront build -p` of an unchanged pipeline against podman's cached rebuild of its compiled Containerfile.

The pipeline is examples/web, on the busybox base list, for linux/amd64 and linux/arm64, on one private
storage (never the user's). Untimed first: the base list, imgfront's first build of the pipeline (which must
then be up to date), `imgfront compile` of it for linux/amd64 (the compiled Containerfile names the base by tag,
so one folder builds for both platforms; only its id comments and labels are amd64's), and podman's first build
of that folder. Then alternating rounds time imgfront, which finds the list up to date and builds nothing,
against `podman build --platform linux/amd64,linux/arm64 --manifest` of the compiled folder, every step from
podman's layer cache. The figures go to bench/out/pipeline.json, and a section is appended to bench/RESULTS.md
with --record.

    .venv/bin/python bench/bench_pipeline.py [--rounds 3] [--record]
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
from bench.bench_build import BUSYBOX, PLATFORMS, private_env, stop_kept_service, timed  # noqa: E402

BASE_IMAGE = "localhost/imgfront/busybox:latest"  # what examples/web/pipeline.yaml builds on
IMGFRONT_LIST = "localhost/bench-imgfront:1"
PODMAN_LIST = "localhost/bench-podman:1"


def run(cmd: list[str], env: dict[str, str]) -> str:
    """An untimed step; its standard error, for the checks."""
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    return result.stderr


def prepare(work: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """The base list in the private store, and a copy of examples/web with its compiled folder."""
    base = work / "base"
    shutil.copytree(ROOT / "containerfiles" / "busybox", base, ignore=shutil.ignore_patterns("busybox-*"))
    for arch in ("amd64", "arm64"):
        shutil.copy(BUSYBOX / f"busybox-{arch}", base / f"busybox-{arch}")
    imgfront = [sys.executable, "-m", "imgfront"]
    run([*imgfront, "build", "--platform", PLATFORMS, "-t", BASE_IMAGE, "--progress", "quiet", str(base)], env)
    pipeline = work / "web" / "pipeline.yaml"
    shutil.copytree(ROOT / "examples" / "web", pipeline.parent)
    compiled = work / "compiled"
    run([*imgfront, "compile", str(pipeline), "-o", str(compiled), "--platform", PLATFORMS.split(",")[0]], env)
    return pipeline, compiled


def build_pipeline(pipeline: Path, progress: str) -> list[str]:
    return [sys.executable, "-m", "imgfront", "build", "-p", str(pipeline), "-t", IMGFRONT_LIST, "--progress", progress]


def commands(pipeline: Path, compiled: Path) -> dict[str, list[str]]:
    podman = ["podman", "build", "--platform", PLATFORMS, "--manifest", PODMAN_LIST, str(compiled)]
    return {"imgfront": build_pipeline(pipeline, "quiet"), "podman": podman}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imgfront-bench-pipeline-") as tmp:
        work = Path(tmp)
        env = private_env(work)
        times: dict[str, list[float]] = {"imgfront": [], "podman": []}
        try:
            pipeline, compiled = prepare(work, env)
            cmds = commands(pipeline, compiled)
            # Warm-up, untimed: both build everything once; then imgfront must find the list up to date.
            for tool in cmds:
                run(cmds[tool], env)
            check = run(build_pipeline(pipeline, "plain"), env)
            if "up to date" not in check:
                sys.exit(f"bench: the unchanged pipeline was not up to date after its first build:\n{check[-2000:]}")
            for round_ in range(args.rounds):
                order = list(cmds) if round_ % 2 == 0 else list(reversed(cmds))  # alternate who goes first
                for tool in order:
                    # podman --manifest appends to an existing list; start each run from none, untimed.
                    subprocess.run(["podman", "manifest", "rm", PODMAN_LIST], env=env, capture_output=True)
                    times[tool].append(timed(cmds[tool], env))
        finally:
            stop_kept_service(env)
            subprocess.run(["podman", "system", "reset", "--force"], env=env, capture_output=True)
    medians = {tool: statistics.median(t) for tool, t in times.items()}
    figures = {
        "imgfront_s": round(medians["imgfront"], 2),
        "podman_s": round(medians["podman"], 2),
        "ratio": round(medians["imgfront"] / medians["podman"], 2),
        "runs": {tool: [round(x, 2) for x in xs] for tool, xs in times.items()},
    }
    podman_version = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout.strip()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {podman_version}, kernel {platform.release()}"
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.json").write_text(json.dumps({"machine": machine, "figures": figures}, indent=2) + "\n")
    lines = [
        "\n## Pipeline: an unchanged `imgfront build -p` vs podman's cached rebuild of the compiled Containerfile",
        f"{time.strftime('%Y-%m-%d')}; {machine}; `examples/web/pipeline.yaml` for {PLATFORMS}, against "
        f"`podman build --platform {PLATFORMS} --manifest` of its `imgfront compile` folder; "
        f"median of {args.rounds} alternating rounds in one run (goal: ratio at most 0.5).\n",
        "| run | imgfront (s) | podman (s) | ratio |",
        "| --- | --- | --- | --- |",
        f"| unchanged, cached | {figures['imgfront_s']} | {figures['podman_s']} | {figures['ratio']} |",
    ]
    print("\n".join(lines))
    if args.record:
        record(lines)


if __name__ == "__main__":
    main()
