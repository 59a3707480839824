"""The settings options of `imgfront build` (--network, --add-host, --ulimit, --shm-size, --memory, --env, --squash-all,
--format, --timestamp) on real engines: each one's effect is seen in what a RUN step wrote or in the image itself.

Builds are few and tiny: one busybox image whose RUN steps write down what they see, read back with the node's own
podman; one more for the image's own form. Docker gets one option it takes and one it refuses.
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import json
import os
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from action_runner import run_action
from conftest import BUSYBOX_CONTAINERFILE, DOCKER_BUSYBOX_CONTAINERFILE
from integration.services.dockerd import run_in_docker

from imgfront.engines.base import parse_time

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

DOCKER_MEDIA = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
# RUN steps that write down what they see, read back from the image. (busybox's static wget crashes here: nc.)
SEEN = """\
RUN cat /etc/hosts > /seen-hosts; ulimit -n > /seen-nofile; grep ' /dev/shm ' /proc/mounts > /seen-shm; \\
    cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes > /seen-memory 2>/dev/null; \\
    grep -E '^(CapEff|Seccomp):' /proc/self/status > /seen-status; readlink /proc/self/ns/net > /seen-netns; true
RUN if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 127.0.0.1 {port} | grep -q here; then echo reached; \\
    else echo failed; fi > /seen-net
"""


@contextlib.contextmanager
def loopback_server() -> Iterator[int]:
    """An HTTP server on 127.0.0.1 answering every GET with "here", stopped when the test is done; its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"here")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def build_one(run_imgfront, env, context: Path, tmp_path: Path, *options: str) -> str:
    """Build the context for this host's platform with the options; the image's id."""
    iid = tmp_path / f"iid-{uuid.uuid4().hex[:8]}"
    result = run_imgfront(["build", "--progress", "plain", "--iidfile", iid, *options, context], env)
    assert result.returncode == 0, result.stderr
    return iid.read_text().strip().removeprefix("sha256:")


def read_file(node, image_id: str, path: str) -> str:
    return node.podman("run", "--rm", "--network", "none", image_id, "cat", path).stdout


def test_run_steps_see_the_hosts_limits_memory_and_network_asked_for(
    podman_node, make_context, run_imgfront, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:12]  # a build of its own, never a cached one
    with loopback_server() as port:
        context = make_context(BUSYBOX_CONTAINERFILE + f"RUN echo {token} > /token\n" + SEEN.format(port=port))
        image = build_one(
            run_imgfront,
            podman_node.env,
            context,
            tmp_path,
            "--add-host",
            "mirror.opts.test:10.9.8.7",
            "--ulimit",
            "nofile=512:512",
            "--shm-size",
            "32m",
            "--memory",
            "256m",
            "--env",
            f"OPTS_ENV={token}",
        )
    assert re.search(r"^10\.9\.8\.7\s+mirror\.opts\.test\s*$", read_file(podman_node, image, "/seen-hosts"), re.M)
    assert read_file(podman_node, image, "/seen-nofile").strip() == "512"
    shm = re.search(r"size=(\d+)k", read_file(podman_node, image, "/seen-shm"))
    assert shm is not None and int(shm[1]) * 1024 == 32 << 20
    assert read_file(podman_node, image, "/seen-memory").split() == [str(256 << 20)]
    # The default network (the node's own, host on podman's API) reaches a server on this host's loopback.
    assert read_file(podman_node, image, "/seen-net").strip() == "reached"
    config = json.loads(podman_node.podman("image", "inspect", image, "--format", "{{json .Config.Env}}").stdout)
    assert f"OPTS_ENV={token}" in config
    status = dict(line.split(":\t") for line in read_file(podman_node, image, "/seen-status").splitlines())
    assert int(status["CapEff"], 16) & 1 << CAP_CHOWN and status["Seccomp"] == "2"  # the defaults, to compare with
    assert not int(status["CapEff"], 16) & 1 << CAP_SYS_ADMIN
    assert read_file(podman_node, image, "/seen-netns").strip() == os.readlink("/proc/self/ns/net")  # this host's


# RUN steps that write down their resources; cgroup v1 paths, as this kind of host has (hybrid cgroups).
RESOURCES = """\
RUN cat /etc/resolv.conf > /seen-resolv; cat /proc/self/cgroup > /seen-cgroup; cd /sys/fs/cgroup; \\
    cat cpu/cpu.shares cpu/cpu.cfs_period_us cpu/cpu.cfs_quota_us cpuset/cpuset.cpus cpuset/cpuset.mems \\
        memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes > /seen-limits; \\
    grep -E '^(CapEff|Seccomp):' /proc/self/status > /seen-status; ls -l /dev/fuse > /seen-device; \\
    readlink /proc/self/ns/net > /seen-netns; true
RUN echo second > /second
"""
CAP_CHOWN, CAP_SYS_ADMIN = 0, 21


def test_run_steps_get_the_dns_cpu_memory_cgroup_caps_seccomp_and_device_asked_for(
    podman_node, make_context, run_imgfront, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:12]
    context = make_context(BUSYBOX_CONTAINERFILE + f"RUN echo {token} > /token\n" + RESOURCES)
    # fmt: off
    image = build_one(
        run_imgfront, podman_node.env, context, tmp_path,
        "--dns", "10.1.2.3", "--dns-search", "opts.test", "--dns-option", "ndots:3",
        "--cpu-shares", "512", "--cpu-period", "100000", "--cpu-quota", "50000",
        "--cpuset-cpus", "0", "--cpuset-mems", "0", "--memory", "256m", "--memory-swap", "512m",
        "--cgroup-parent", f"/imgfront-opts-{token}", "--cap-drop", "CAP_CHOWN",
        "--security-opt", "seccomp=unconfined", "--device", "/dev/fuse", "--layers=false",
        "--cap-add", "CAP_SYS_ADMIN",
    )
    # fmt: on
    resolv = read_file(podman_node, image, "/seen-resolv").splitlines()
    assert {"nameserver 10.1.2.3", "search opts.test", "options ndots:3"} <= set(resolv)
    limits = read_file(podman_node, image, "/seen-limits").split()
    assert limits == ["512", "100000", "50000", "0", "0", str(256 << 20), str(512 << 20)]
    assert f"/imgfront-opts-{token}" in read_file(podman_node, image, "/seen-cgroup")
    status = dict(line.split(":\t") for line in read_file(podman_node, image, "/seen-status").splitlines())
    assert not int(status["CapEff"], 16) & 1 << CAP_CHOWN and status["Seccomp"] == "0"
    assert int(status["CapEff"], 16) & 1 << CAP_SYS_ADMIN
    assert read_file(podman_node, image, "/seen-device").startswith("c")  # the node's character device
    # Without layers, the whole build is one commit: one layer, where each step would have made its own.
    assert len(stored_manifest(podman_node, image)["layers"]) == 1


def test_network_private_gives_run_steps_a_namespace_of_their_own(
    podman_node, make_context, run_imgfront, tmp_path: Path
) -> None:
    """The 5.x test node's netavark sets such a network up with nft (nftables is in its root filesystem)."""
    token = uuid.uuid4().hex[:12]
    with loopback_server() as port:
        context = make_context(BUSYBOX_CONTAINERFILE + f"RUN echo {token} > /token\n" + SEEN.format(port=port))
        image = build_one(run_imgfront, podman_node.env, context, tmp_path, "--network", "private")
    assert read_file(podman_node, image, "/seen-netns").strip() != os.readlink("/proc/self/ns/net")
    assert read_file(podman_node, image, "/seen-net").strip() == "failed"  # this host's loopback is not the step's


def test_isolation_chroot_runs_steps_in_the_nodes_own_pid_namespace(
    podman_node, make_context, run_imgfront, tmp_path: Path
) -> None:
    """An OCI step (the default) gets a PID namespace of its own; a chroot one runs in the node's podman's."""

    def context() -> Path:  # a step of its own each time, never the cache's
        token = uuid.uuid4().hex[:12]
        return make_context(BUSYBOX_CONTAINERFILE + f"RUN echo {token} > /token; readlink /proc/self/ns/pid > /pidns\n")

    chroot = build_one(run_imgfront, podman_node.env, context(), tmp_path, "--isolation", "chroot")
    oci = build_one(run_imgfront, podman_node.env, context(), tmp_path)
    node_pid_namespace = podman_node.run("readlink", "/proc/self/ns/pid").stdout.strip()
    assert read_file(podman_node, chroot, "/pidns").strip() == node_pid_namespace
    assert read_file(podman_node, oci, "/pidns").strip() != node_pid_namespace


def test_network_none_cuts_run_steps_off_and_the_image_takes_the_form_asked_for(
    podman_node, make_context, run_imgfront, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:12]
    with loopback_server() as port:
        context = make_context(BUSYBOX_CONTAINERFILE + f"RUN echo {token} > /token\n" + SEEN.format(port=port))
        image = build_one(
            run_imgfront,
            podman_node.env,
            context,
            tmp_path,
            "--network",
            "none",
            "--squash-all",
            "--format",
            "docker",
            "--timestamp",
            "1000000000",
        )
    assert read_file(podman_node, image, "/seen-net").strip() == "failed"
    manifest = json.loads(podman_node.run("skopeo", "inspect", "--raw", f"containers-storage:{image}").stdout)
    assert manifest["mediaType"] == DOCKER_MEDIA and manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert len(manifest["layers"]) == 1  # busybox, its links and every RUN step's files, in one layer
    inspected = json.loads(podman_node.podman("image", "inspect", image).stdout)[0]
    assert parse_time(inspected["Created"]) == datetime.datetime(2001, 9, 9, 1, 46, 40, tzinfo=datetime.UTC)


def test_squash_adds_one_layer_on_the_base_and_unsetenv_and_omit_history_shape_the_config(
    podman_node, make_context, run_imgfront, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:12]
    base_name = f"localhost/opts-base-{token}:1"
    base_context = make_context(BUSYBOX_CONTAINERFILE + f"RUN echo {token} > /token\n")
    base = build_one(run_imgfront, podman_node.env, base_context, tmp_path, "--env", "BASE_ENV=1")
    podman_node.podman("tag", base, base_name)  # an image, not the list -t would make
    assert len(stored_manifest(podman_node, base)["layers"]) == 3  # COPY and two RUN steps
    context = make_context(f"FROM {base_name}\nRUN echo a > /a\nRUN echo b > /b\n")
    image = build_one(
        run_imgfront, podman_node.env, context, tmp_path, "--squash", "--unsetenv", "BASE_ENV", "--omit-history"
    )
    assert len(stored_manifest(podman_node, image)["layers"]) == 4  # the base's three, and one for both RUN steps
    assert read_file(podman_node, image, "/b").strip() == "b"
    config = json.loads(podman_node.run("skopeo", "inspect", "--config", f"containers-storage:{image}").stdout)
    assert not any(e.startswith("BASE_ENV=") for e in config["config"].get("Env") or [])
    assert not config.get("history")


def stored_manifest(node, image_id: str) -> dict[str, object]:
    return dict(json.loads(node.run("skopeo", "inspect", "--raw", f"containers-storage:{image_id}").stdout))


def test_action_inputs_become_the_network_host_shm_and_ulimit_options(
    podman_node, make_context, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:12]
    with loopback_server() as port:
        context = make_context(BUSYBOX_CONTAINERFILE + f"RUN echo {token} > /token\n" + SEEN.format(port=port))
        env = dict(podman_node.env)
        env["PATH"] = os.pathsep.join([os.fspath(Path(sys.executable).parent), env.get("PATH", os.defpath)])
        result = run_action(
            ROOT,
            {
                "context": context.name,
                "tags": "localhost/opts-action:1",
                "network": "host",
                "add-hosts": "a.opts.test:10.1.1.1, b.opts.test:10.1.1.2",
                "shm-size": "16m",
                "ulimit": "nofile=256:256\nnproc=512:1024\n",
            },
            env=env,
            workspace=tmp_path,
            runner_temp=tmp_path / "runner-temp",
        )
    assert result.ok, "\n".join(f"{s.id}: {s.status} {s.stdout}{s.stderr}" for s in result.steps)
    image = json.loads(result.outputs["metadata"])["imgfront.builds"][0]["image_id"]
    hosts = read_file(podman_node, image, "/seen-hosts")
    assert re.search(r"^10\.1\.1\.1\s+a\.opts\.test\s*$", hosts, re.M)
    assert re.search(r"^10\.1\.1\.2\s+b\.opts\.test\s*$", hosts, re.M)
    assert read_file(podman_node, image, "/seen-nofile").strip() == "256"
    shm = re.search(r"size=(\d+)k", read_file(podman_node, image, "/seen-shm"))
    assert shm is not None and int(shm[1]) * 1024 == 16 << 20
    assert read_file(podman_node, image, "/seen-net").strip() == "reached"


def test_docker_takes_add_host_shm_size_and_container_limits(
    dockerd, make_context, run_imgfront, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:12]
    context = make_context(
        DOCKER_BUSYBOX_CONTAINERFILE
        + f"RUN echo {token} > /token; cat /etc/hosts > /seen-hosts; grep ' /dev/shm ' /proc/mounts > /seen-shm; "
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares > /seen-limits\n"
    )
    meta = tmp_path / "meta.json"
    result = run_imgfront(
        [
            "build",
            "--engine",
            "docker",
            "--progress",
            "plain",
            "--metadata-file",
            meta,
            "--add-host",
            "mirror.opts.test:10.9.8.7",
            "--shm-size",
            "32m",
            "--memory",
            "256m",
            "--cpu-shares",
            "512",
            context,
        ],
        {**dockerd.env, "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    image = json.loads(meta.read_text())["imgfront.builds"][0]["image_id"]
    hosts = run_in_docker(dockerd, image, ["/bin/busybox", "cat", "/seen-hosts"])
    assert re.search(r"^10\.9\.8\.7\s+mirror\.opts\.test\s*$", hosts, re.M)
    shm = re.search(r"size=(\d+)k", run_in_docker(dockerd, image, ["/bin/busybox", "cat", "/seen-shm"]))
    assert shm is not None and int(shm[1]) * 1024 == 32 << 20
    limits = run_in_docker(dockerd, image, ["/bin/busybox", "cat", "/seen-limits"]).split()
    assert limits == [str(256 << 20), "512"]  # container_limits memory and cpushares


@pytest.mark.parametrize(
    ("option", "refusal"),
    [
        (["--ulimit", "nofile=512"], r"--ulimit is not supported on docker nodes \(\S+\)"),
        (
            ["--squash"],
            r"--squash is not supported on docker node \S+: its daemon runs without experimental features.*",
        ),
    ],
    ids=["ulimit", "squash"],
)
def test_docker_refuses_an_option_it_cannot_honour_before_building(
    dockerd, make_context, run_imgfront, tmp_path: Path, option: list[str], refusal: str
) -> None:
    client = dockerd.client()
    try:
        before = {i["Id"] for i in client.images(all=True)}
        result = run_imgfront(
            ["build", "--engine", "docker", *option, make_context(DOCKER_BUSYBOX_CONTAINERFILE)],
            {**dockerd.env, "HOME": str(tmp_path)},
        )
        after = {i["Id"] for i in client.images(all=True)}
    finally:
        client.close()
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("hint:")]
    assert len(lines) == 1 and re.fullmatch(f"imgfront: {refusal}", lines[0]), lines
    assert "Traceback" not in result.stderr and after == before


def test_volume_binds_a_node_folder_from_podman_4_4_and_4_3_refuses_it(
    podman_node, make_context, run_imgfront, tmp_path: Path
) -> None:
    """The folder is the node's: under /tmp, which the podman 5.x test node shares with this host."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data").write_text("from the node\n")
    context = make_context(BUSYBOX_CONTAINERFILE + "RUN --network=none cat /mnt/data > /seen\n")
    volume = f"{shared}:/mnt:ro"
    if podman_node.major < 5:
        refused = run_imgfront(["build", "--volume", volume, context], podman_node.env)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.splitlines()[0] == (
            f"imgfront: --volume needs podman 4.4 or newer; node local runs {podman_node.version}"
        )
        return
    image = build_one(run_imgfront, podman_node.env, context, tmp_path, "--no-cache", "-v", volume)
    assert read_file(podman_node, image, "/seen") == "from the node\n"
    assert "data" not in podman_node.podman("run", "--rm", image, "ls", "/mnt").stdout  # bound, not copied
