#!/usr/bin/env python3
"""Time a reproducible two-platform build (`--source-date-epoch`), and one with `--sbom --provenance`, against
the same build without either.

All are imgfront's cold `--no-cache` builds of the reference workload (containerfiles/reference) on one
private storage, in rotating order. The reproducible one also exports each platform's image, normalises it
and loads it back (docs/reproducible.md); the goal is at most 1.3 times the plain build. The attested one
exports each image once more, reads it for the SBOM, and asks the node for its bases (docs/attestations.md);
the issue sets it no goal. The figures go to bench/out/reproducible.json, and a section is appended to
bench/RESULTS.md with --record.

    .venv/bin/python bench/bench_reproducible.py [--rounds 3] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import record  # noqa: E402
from bench.bench_build import PLATFORMS, context, private_env, stop_kept_service, timed  # noqa: E402
from bench.podman5 import host_podman_version  # noqa: E402

EPOCH = "1700000000"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"plain": [], "reproducible": [], "attested": []}
    with tempfile.TemporaryDirectory(prefix="imgfront-bench-") as tmp:
        work = Path(tmp)
        env, ctx = private_env(work), context(work)
        base = [sys.executable, "-m", "imgfront", "build", "--platform", PLATFORMS, "--progress", "quiet", "--no-cache"]
        cmds = {
            "plain": [*base, "-t", "localhost/bench-plain:1", str(ctx)],
            "reproducible": [*base, "--source-date-epoch", EPOCH, "-t", "localhost/bench-repro:1", str(ctx)],
            "attested": [*base, "--sbom", "--provenance", "-t", "localhost/bench-attested:1", str(ctx)],
        }
        env["XDG_DATA_HOME"] = str(work / "data")  # the kept attestations, removed with the run
        try:
            for round_ in range(args.rounds):
                kinds = list(cmds)
                order = kinds[round_ % len(kinds) :] + kinds[: round_ % len(kinds)]
                for kind in order:
                    times[kind].append(timed(cmds[kind], env))
        finally:
            stop_kept_service(env)
            subprocess.run(["podman", "system", "reset", "--force"], env=env, capture_output=True)
    medians = {kind: round(statistics.median(t), 2) for kind, t in times.items()}
    ratio = round(medians["reproducible"] / medians["plain"], 2)
    attested = round(medians["attested"] / medians["plain"], 2)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {host_podman_version()}, kernel {platform.release()}"
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine, "medians_s": medians, "ratio": ratio, "attested_ratio": attested, "runs": times}
    (out / "reproducible.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        "\n## Reproducible and attested builds: `--source-date-epoch`, `--sbom --provenance` vs the same cold build",
        f"{time.strftime('%Y-%m-%d')}; {machine}; reference workload `containerfiles/reference`, `--no-cache`; "
        f"median of {args.rounds} rotating rounds in one run.\n",
        "| build | imgfront (s) |",
        "| --- | --- |",
        *(f"| {kind} | {seconds} |" for kind, seconds in medians.items()),
        f"\nRatio reproducible / plain: {ratio} (goal: at most 1.3).",
        f"Ratio `--sbom --provenance` / plain: {attested} (no goal set).",
    ]
    print("\n".join(lines))
    if args.record:
        record(lines)


if __name__ == "__main__":
    main()
