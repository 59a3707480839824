"""A real sshd on loopback that lets root in with a test key, for ssh:// nodes (podman-py and imgfront's tunnel)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket as socketlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from integration.services.common import SETUP_HINT, free_port, stop


@dataclass(frozen=True)
class Sshd:
    """A real sshd on loopback that lets root in with a test key; ssh_config trusts its host key."""

    port: int
    identity: Path
    ssh_config: Path
    pid: int

    def uri(self, socket: Path) -> str:
        return f"ssh://root@127.0.0.1:{self.port}{socket}"


@contextlib.contextmanager
def run_sshd(base: Path) -> Iterator[Sshd]:
    """sshd on a free port of 127.0.0.1 with its host key, test key and config under base; stopped by its PID."""
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(binary).exists():
        pytest.fail(f"sshd is not installed: {SETUP_HINT}", pytrace=False)
    for name in ("host_key", "id_test"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.fspath(base / name)], check=True)
    (base / "authorized_keys").write_text((base / "id_test.pub").read_text())
    port = free_port()
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\nPidFile {base / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {base / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "AllowStreamLocalForwarding yes\n"
    )
    host_key = (base / "host_key.pub").read_text().split()
    (base / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    ssh_config = base / "ssh_config"
    ssh_config.write_text(
        f"Host *\n  UserKnownHostsFile {base / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
        f"  GlobalKnownHostsFile /dev/null\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    log = base / "sshd.log"
    proc = subprocess.Popen(
        [binary, "-D", "-f", os.fspath(config), "-E", os.fspath(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with socketlib.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start: {log.read_text() if log.exists() else ''}", pytrace=False)
            time.sleep(0.05)
        yield Sshd(port=port, identity=base / "id_test", ssh_config=ssh_config, pid=proc.pid)
    finally:
        stop(proc)
