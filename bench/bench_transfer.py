#!/usr/bin/env python3
"""Throughput of bringing an image home from a node, against `podman save | podman load`, in one run.

Two private podman stores stand for a node and the local machine. imgfront brings the image home as a build
does (LocalListBuilder.bring_home: the node's export read ahead into the local import, with no copy on the
client's disk); the baseline pipes
`podman save` of the first store into `podman load` of the second. The image is one layer of random data.

With --engine podman5 the node is a podman 5.x node in a container (bench/podman5.py, the tests' node) and
home is still the host's podman 4.3 on a private store: the baseline pipes the node's own `podman save` into
the host's `podman load`, and the figures go to bench/out/transfer-podman5.json.

    .venv/bin/python bench/bench_transfer.py [--engine podman4|podman5] [--size-mb 256] [--rounds 3] [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import record  # noqa: E402
from bench.bench_build import CONF  # noqa: E402
from bench.podman5 import host_podman_version, podman5_node  # noqa: E402
from imgfront.engines import connect  # noqa: E402
from imgfront.model import BuildReport  # noqa: E402
from imgfront.nodes.connections import Connection  # noqa: E402
from imgfront.platforms import Platform  # noqa: E402
from imgfront.run.lists import LocalListBuilder  # noqa: E402


def store(base: Path) -> dict[str, str]:
    base.mkdir(parents=True)
    (base / "containers.conf").write_text(CONF)
    (base / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{base}/root"\nrunroot = "{base}/runroot"\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "CONTAINER_HOST"}
    env.update(CONTAINERS_CONF=str(base / "containers.conf"), CONTAINERS_STORAGE_CONF=str(base / "storage.conf"))
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--record", action="store_true")
    parser.add_argument(
        "--format",
        choices=("oci-archive", "docker-archive"),
        default="oci-archive",
        help="what imgfront streams (it uses oci-archive between podman nodes)",
    )
    parser.add_argument(
        "--engine",
        choices=("podman4", "podman5"),
        default="podman4",
        help="the node's podman: podman4, the host's on a private store; podman5, a podman 5.x node in a container",
    )
    args = parser.parse_args()
    node_version = ""
    with tempfile.TemporaryDirectory(prefix="imgfront-bench-transfer-") as tmp, contextlib.ExitStack() as nodes:
        work = Path(tmp)
        ctx = work / "ctx"
        # The node's podman: the host's on a private store, or the podman 5 node's own CLI (which sees ctx).
        if args.engine == "podman5":
            ctx.mkdir()
            p5 = nodes.enter_context(podman5_node(work, mounts=[ctx]))
            node_cli, node_env, node_url, node_version = list(p5.cli), p5.cli_env, p5.url, p5.version
            home_env = store(work / "home")
        else:
            node_env, home_env = store(work / "node"), store(work / "home")
            node_cli, node_url = ["podman"], f"unix://{work / 'node.sock'}"
            ctx.mkdir()
        with (ctx / "blob").open("wb") as f:
            for _ in range(args.size_mb):
                f.write(os.urandom(1 << 20))
        (ctx / "Containerfile").write_text("FROM scratch\nCOPY blob /blob\n")
        image = subprocess.run(
            [*node_cli, "build", "-q", "--platform", "linux/amd64", str(ctx)],
            env=node_env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        services = []
        served = (("home", home_env),) if args.engine == "podman5" else (("node", node_env), ("home", home_env))
        for name, env in served:
            sock = work / f"{name}.sock"
            services.append(
                subprocess.Popen(
                    ["podman", "system", "service", "--time=0", f"unix://{sock}"], env=env, stderr=subprocess.DEVNULL
                )
            )
        try:
            for sock in (work / f"{name}.sock" for name, _ in served):
                while not sock.exists():
                    time.sleep(0.05)
            stack = contextlib.ExitStack()
            node = connect(Connection("node", node_url), stack)
            home = connect(Connection("home", f"unix://{work / 'home.sock'}"), stack)
            times: dict[str, list[float]] = {"imgfront": [], "podman save | load": []}
            for _ in range(args.rounds):
                start = time.monotonic()
                if args.format == "oci-archive":  # what a build does: LocalListBuilder.bring_home
                    lists = LocalListBuilder(home, {"node": node}, note=lambda _: None)
                    lists.bring_home(BuildReport(image, "", Platform.parse("linux/amd64"), "node", 0.0))
                else:
                    home.import_image(node.export_image(image, oci=False))
                times["imgfront"].append(time.monotonic() - start)
                home.remove_image(image, force=True)
                start = time.monotonic()
                save = subprocess.Popen(
                    [*node_cli, "save", "--format", args.format, image], env=node_env, stdout=subprocess.PIPE
                )
                subprocess.run(
                    ["podman", "load", "-q"], env=home_env, stdin=save.stdout, check=True, capture_output=True
                )
                save.wait()
                times["podman save | load"].append(time.monotonic() - start)
                subprocess.run(["podman", "rmi", "-f", image], env=home_env, capture_output=True)
            stack.close()
        finally:
            for service in services:
                service.terminate()
                service.wait()
            for _, env in served:
                subprocess.run(["podman", "system", "reset", "--force"], env=env, capture_output=True)
    rates = {tool: round(args.size_mb / statistics.median(t), 1) for tool, t in times.items()}
    ratio = round(rates["imgfront"] / rates["podman save | load"], 2)
    if args.engine == "podman5":
        heading = f"\n## Transfer from a podman {node_version} node: bringing a {args.size_mb} MiB image home"
        where = (
            f"node: podman {node_version} in a container of the host's podman, its own CLI for `podman save`; "
            f"home: the host's {host_podman_version()} on a private store"
        )
    else:
        heading = f"\n## Transfer: bringing a {args.size_mb} MiB image home"
        where = "both through local stores"
    lines = [
        f"{heading} as {args.format}, imgfront vs podman save | load",
        f"{time.strftime('%Y-%m-%d')}; median of {args.rounds} rounds in one run; {where}.\n",
        "| tool | MiB/s |",
        "| --- | --- |",
        *("| " + tool.replace("|", "\\|") + f" | {rate} |" for tool, rate in rates.items()),
        f"\nThroughput ratio imgfront / podman: {ratio} (higher is better for imgfront).",
    ]
    print("\n".join(lines))
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    name = "transfer.json" if args.engine == "podman4" else f"transfer-{args.engine}.json"
    (out / name).write_text(json.dumps({"rates_mib_s": rates, "ratio": ratio, "runs": times}, indent=2))
    if args.record:
        record(lines)


if __name__ == "__main__":
    main()
