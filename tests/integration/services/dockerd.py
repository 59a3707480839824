"""A real Docker engine on a private socket and data root (Debian's docker.io, 20.10), for the Docker adapter.

It also listens with TLS on ``.tls_url`` (``tcp://127.0.0.1:PORT``, client certificates required); ``.tls_env``
holds DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem) for it. It cannot pull: build test images
FROM scratch (``make_context``'s busybox binaries), beginning each scratch stage with COPY.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from integration.services.common import SETUP_HINT, free_port, unix_http_get, unmount_and_remove, wait_for_service

DOCKERD_START_TIMEOUT = 60.0
DOCKERD_STOP_TIMEOUT = 40.0  # dockerd gives running containers 15 s before it kills them


@dataclass(frozen=True)
class Dockerd:
    """A private Docker engine; it starts a containerd of its own, whose state lives under exec_root."""

    socket: Path
    url: str
    pid: int
    data_root: Path
    exec_root: Path
    env: dict[str, str] = field(hash=False)  # os.environ without DOCKER_* settings, plus DOCKER_HOST=url
    tls_url: str = ""  # tcp://127.0.0.1:PORT, TLS with client certificates
    tls_env: dict[str, str] = field(default_factory=dict, hash=False)  # DOCKER_TLS_VERIFY, DOCKER_CERT_PATH

    def get(self, url_path: str, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """A raw GET against the engine, e.g. get("/v1.41/info")."""
        return unix_http_get(self.socket, url_path, timeout)

    def client(self) -> object:
        """A docker.APIClient on this engine (typed loosely: the SDK has no types); close it when done."""
        import docker

        return docker.APIClient(base_url=self.url, version="1.41", timeout=120)


def make_certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, named as DOCKER_CERT_PATH wants them."""
    directory.mkdir()

    def openssl(*args: str) -> None:
        run = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            pytest.fail(f"openssl {' '.join(args)} failed: {run.stderr}", pytrace=False)

    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *curve, "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca")
    for name, usage, subject in (("server", "serverAuth", "127.0.0.1"), ("client", "clientAuth", "client")):
        (directory / f"{name}.ext").write_text(f"subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n")
        openssl("req", *curve, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj", f"/CN={subject}")
        sign = ["-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext"]
        openssl("x509", "-req", "-in", f"{name}.csr", "-out", f"{name}-cert.pem", *sign)
    (directory / "client-key.pem").rename(directory / "key.pem")
    (directory / "client-cert.pem").rename(directory / "cert.pem")


@contextlib.contextmanager
def run_dockerd(base: Path) -> Iterator[Dockerd]:
    """A real dockerd on a private socket and data root under the session's tmp dir, removed at the end.

    overlay2 works on this kind of host without --storage-driver; dockerd 20.10 starts its own containerd
    when none is named, keeping that containerd's state under the exec root. An empty --config-file keeps
    the host's /etc/docker/daemon.json out.
    """
    binary = shutil.which("dockerd")
    if binary is None:
        pytest.fail(f"dockerd is not installed (package docker.io): {SETUP_HINT}", pytrace=False)
    sock, pidfile, config, log = base / "docker.sock", base / "docker.pid", base / "daemon.json", base / "dockerd.log"
    data_root, exec_root, certs = base / "data", base / "exec", base / "certs"
    config.write_text("{}\n")
    if shutil.which("openssl") is None:
        pytest.fail(f"openssl is not installed: {SETUP_HINT}", pytrace=False)
    make_certificates(certs)
    tls_port = free_port()
    command = [
        binary,
        "--config-file",
        os.fspath(config),
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        "--host",
        f"unix://{sock}",
        "--data-root",
        os.fspath(data_root),
        "--exec-root",
        os.fspath(exec_root),
        "--pidfile",
        os.fspath(pidfile),
        "--default-ulimit",
        "nofile=1024:1024",
        # TLS applies to TCP listeners only; the unix socket stays as it is.
        "--host",
        f"tcp://127.0.0.1:{tls_port}",
        "--tlsverify",
        "--tlscacert",
        os.fspath(certs / "ca.pem"),
        "--tlscert",
        os.fspath(certs / "server-cert.pem"),
        "--tlskey",
        os.fspath(certs / "server-key.pem"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    with log.open("wb") as log_file:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        wait_for_service(proc, sock, log, what="dockerd", timeout=DOCKERD_START_TIMEOUT)
        yield Dockerd(
            socket=sock,
            url=f"unix://{sock}",
            pid=proc.pid,
            data_root=data_root,
            exec_root=exec_root,
            env={**env, "DOCKER_HOST": f"unix://{sock}"},
            tls_url=f"tcp://127.0.0.1:{tls_port}",
            tls_env={"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": os.fspath(certs)},
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(DOCKERD_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        unmount_and_remove(base)


def run_in_docker(dockerd: Dockerd, image_id: str, command: list[str]) -> str:
    """Run the image on the test's dockerd, offline, and return what it printed; the container is removed."""
    client = dockerd.client()
    try:
        container = client.create_container(image_id, command=command, host_config={"NetworkMode": "none"})
        try:
            client.start(container)
            assert client.wait(container, timeout=60)["StatusCode"] == 0
            return str(client.logs(container).decode().strip())
        finally:
            client.remove_container(container, force=True)
    finally:
        client.close()
