"""imgfront's ssh tunnel to a podman node, through a real sshd on loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from imgfront.engines import connected
from imgfront.engines.podman import PodmanBuilder
from imgfront.engines.tunnel import SshTunnel
from imgfront.errors import EngineError
from imgfront.nodes.connections import Connection

pytestmark = pytest.mark.slow


def test_tunnel_reaches_podman_over_ssh(podman_node, sshd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGFRONT_SSH_CONFIG", str(sshd.ssh_config))
    tunnel = SshTunnel("ssh-node", sshd.uri(podman_node.socket), identity=str(sshd.identity))
    try:
        local = tunnel.open()
        with connected(Connection("ssh-node", local)) as node:
            assert isinstance(node, PodmanBuilder) and node.server_version == podman_node.version
    finally:
        tunnel.close()
    assert tunnel.process is None and tunnel.dir is None


def test_wrong_key_is_one_line_naming_the_node(podman_node, sshd, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("IMGFRONT_SSH_CONFIG", str(sshd.ssh_config))
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    with pytest.raises(EngineError) as info:
        SshTunnel("pi", sshd.uri(podman_node.socket), identity=str(stranger)).open()
    assert info.value.message.startswith("pi: ssh to root@127.0.0.1 failed: ")
    assert "Permission denied" in info.value.message
    assert "authentication failed" in (info.value.hint or "")


def test_unknown_host_key_is_refused(podman_node, sshd, tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  UserKnownHostsFile {tmp_path / 'empty'}\n  GlobalKnownHostsFile /dev/null\n")
    monkeypatch.setenv("IMGFRONT_SSH_CONFIG", str(config))
    with pytest.raises(EngineError) as info:
        SshTunnel("pi", sshd.uri(podman_node.socket), identity=str(sshd.identity)).open()
    assert "Host key verification failed" in info.value.message
    assert "host key" in (info.value.hint or "")
