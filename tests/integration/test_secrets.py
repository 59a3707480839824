"""`imgfront build --secret` against real podman services, 4.3 and 5.x, local and over ssh: a RUN step reads the
secret, and its bytes are nowhere else, not in any layer (with `COPY . .`), the log, the metadata file, or any
file imgfront wrote; bad secrets are one line and exit 2 before any build."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BUSYBOX_CONTAINERFILE

from imgfront.engines.upload import SECRET_PREFIX

pytestmark = pytest.mark.slow

# Each RUN writes the sha256 of what it read, so the image holds proof of the secret but never the secret.
SECRET_CONTAINERFILE = (
    BUSYBOX_CONTAINERFILE
    + """WORKDIR /src
COPY . .
RUN --mount=type=secret,id=token sha256sum /run/secrets/token | cut -d' ' -f1 > /token.sha
RUN --mount=type=secret,id=FROM_ENV cat /run/secrets/FROM_ENV | sha256sum | cut -d' ' -f1 > /env.sha
RUN echo secret-steps-done && ls -la /src /run > /listing
"""
)


def new_secret(kind: str) -> bytes:
    """A value no image or file could hold by chance, with a newline inside, as keys and certificates have."""
    return f"{kind}-{uuid.uuid4().hex}\nsecond line {uuid.uuid4().hex}".encode()


def sha(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def image_files(node: Any, image: str) -> Iterator[tuple[str, bytes]]:
    """Every blob of the image's oci-archive as podman exports it, and every file of every layer, unpacked."""
    status, _, archive = node.get(f"/v4.0.0/libpod/images/{image}/get?format=oci-archive", timeout=120.0)
    assert status == 200, archive[:200]
    with tarfile.open(fileobj=io.BytesIO(archive)) as outer:
        for blob in outer.getmembers():
            data = outer.extractfile(blob).read() if blob.isfile() else b""  # type: ignore[union-attr]
            yield f"archive:{blob.name}", data
            raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
            if raw is not data:
                yield f"unpacked:{blob.name}", raw
            yield from _layer_files(blob.name, raw)


def _layer_files(blob: str, raw: bytes) -> Iterator[tuple[str, bytes]]:
    """Each file of a blob that is a layer tar (config and manifest blobs are not)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(raw)) as layer:
            for member in layer.getmembers():
                content = layer.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
                yield f"{blob}:{member.name}", content
    except tarfile.TarError:
        return


def files_holding(folder: Path, needles: list[bytes]) -> list[str]:
    """Every file under folder whose bytes hold one of the needles, or whose name is an uploaded secret's."""
    found = []
    for root, _, names in os.walk(folder):
        for name in names:
            path = Path(root, name)
            if name.startswith(SECRET_PREFIX):
                found.append(os.fspath(path))
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if any(needle in data for needle in needles):
                found.append(os.fspath(path))
    return found


def needles(*values: bytes) -> list[bytes]:
    """Each value, and each of its lines: a log that printed one line of a secret leaks it too."""
    return [*values, *(line for v in values for line in v.splitlines() if line)]


def build_with_secrets(
    node_env: dict[str, str], tmp_path: Path, make_context: Any, tag: str, extra: list[str]
) -> tuple[subprocess.CompletedProcess[str], dict[str, bytes], Path, Path, list[str]]:
    """Build SECRET_CONTAINERFILE with a file secret and an env secret, with --debug and plain progress.

    imgfront's temporary folder (TMPDIR) is scanned while the RUN steps run, when the packed context is on disk,
    and again after; returns the result, the secrets, the context, the metadata file and what the scan found.
    """
    token, from_env = new_secret("file"), new_secret("env")
    secret_file = tmp_path / "token.txt"
    secret_file.write_bytes(token)
    context = make_context(SECRET_CONTAINERFILE, {"notes.txt": "not a secret\n"})
    temp = Path(tempfile.mkdtemp(prefix="imgf-"))  # short: the ssh tunnel's socket path must fit in 108 bytes
    try:
        return _build(node_env, tmp_path, context, tag, extra, temp, secret_file, token, from_env)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _build(
    node_env: dict[str, str],
    tmp_path: Path,
    context: Path,
    tag: str,
    extra: list[str],
    temp: Path,
    secret_file: Path,
    token: bytes,
    from_env: bytes,
) -> tuple[subprocess.CompletedProcess[str], dict[str, bytes], Path, Path, list[str]]:
    meta = tmp_path / "metadata.json"
    env = {**node_env, "TMPDIR": os.fspath(temp), "SECRET_FOR_BUILD": from_env.decode()}
    args = [
        sys.executable,
        "-m",
        "imgfront",
        "--debug",
        "build",
        "--secret",
        f"id=token,src={secret_file}",
        "--secret",
        "type=env,id=FROM_ENV,env=SECRET_FOR_BUILD",
        "--progress",
        "plain",
        "--metadata-file",
        os.fspath(meta),
        "-t",
        tag,
        *extra,
        os.fspath(context),
    ]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None and proc.stdout is not None
    seen: list[str] = []
    during: list[str] = []
    packed: list[Path] = []
    for line in proc.stderr:
        seen.append(line)
        if "--mount=type=secret,id=token" in line and not packed:
            # The build is running: the packed context is on disk now.
            packed = list(temp.glob("imgfront-run-*/build-*/context-*.tar"))
            during = files_holding(temp, needles(token, from_env))
    stdout = proc.stdout.read()
    proc.wait(timeout=600)
    result = subprocess.CompletedProcess(args, proc.returncode, stdout, "".join(seen))
    assert result.returncode == 0, result.stderr
    assert packed, f"no packed context under {temp} while the build ran:\n{result.stderr}"
    after = files_holding(temp, needles(token, from_env))
    return result, {"token": token, "FROM_ENV": from_env}, context, meta, during + after


def left_on_server(node: Any) -> list[str]:
    """Uploaded secrets still in the server's temporary folders (podman's libpod_builder* scratch folders)."""
    found = node.run("find", "/var/tmp", "/tmp", "-maxdepth", "3", "-name", f"{SECRET_PREFIX}*", check=False)
    return found.stdout.split()


def check_nowhere(
    node: Any,
    tag: str,
    result: subprocess.CompletedProcess[str],
    secrets: dict[str, bytes],
    context: Path,
    meta: Path,
    left: list[str],
) -> None:
    values = list(secrets.values())
    files = dict(image_files(node, tag))
    by_path = {name.partition(":")[2]: data for name, data in files.items() if name.count(":") == 1}
    # The RUN steps read each secret exactly.
    read = {n.rsplit("/", 1)[-1]: d.decode().strip() for n, d in by_path.items() if n.endswith(".sha")}
    assert read == {"token.sha": sha(secrets["token"]), "env.sha": sha(secrets["FROM_ENV"])}
    # The context was copied (COPY . .), and nothing under a secret's upload name came with it.
    assert any(n.endswith("src/notes.txt") for n in by_path), sorted(by_path)
    assert [n for n in files if SECRET_PREFIX in n] == []
    listing = next(d for n, d in by_path.items() if n.endswith("listing")).decode()
    assert SECRET_PREFIX not in listing
    for needle in needles(*values):
        assert [name for name, data in files.items() if needle in data] == []
        assert needle.decode() not in result.stdout + result.stderr
    assert not any(needle in meta.read_bytes() for needle in needles(*values))
    assert files_holding(context, needles(*values)) == []
    assert left == []
    assert left_on_server(node) == []


def test_secrets_reach_run_steps_and_no_layer_log_or_file(
    podman_node, make_context, run_imgfront, tmp_path: Path
) -> None:
    tag = f"localhost/secrets-local:{podman_node.major}"
    result, secrets, context, meta, left = build_with_secrets(podman_node.env, tmp_path, make_context, tag, [])
    assert "secret-steps-done" in result.stderr
    check_nowhere(podman_node, tag, result, secrets, context, meta, left)
    metadata = json.loads(meta.read_text())
    assert metadata["image.name"] == tag


def test_secrets_reach_run_steps_on_an_ssh_node(
    podman_node, extra_nodes, sshd, make_context, run_imgfront, tmp_path: Path
) -> None:
    remote = extra_nodes()
    tag = f"localhost/secrets-ssh:{podman_node.major}"
    env = {**podman_node.env, "IMGFRONT_SSH_CONFIG": os.fspath(sshd.ssh_config)}
    node = ["--no-local", "--node", f"{sshd.uri(remote.socket)}?name=remote", "--identity", os.fspath(sshd.identity)]
    result, secrets, context, meta, left = build_with_secrets(env, tmp_path, make_context, tag, node)
    assert "@remote]" in result.stderr
    check_nowhere(podman_node, tag, result, secrets, context, meta, left)
    assert left_on_server(remote) == []  # the node that built it removed its scratch folder too


def one_line(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("hint:")]


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("src={file}", None),  # the good one: id from the file's name; checked below for the others
        ("type=file", "invalid --secret: no id (id=ID), and no src= or env= to take it from"),
        ("id=x,src={file},env=HOME", "invalid --secret: give src= (a file) or env= (a variable), not both"),
        ("id=x,value=hunter2", "invalid --secret: unknown key 'value'"),
        ("hunter2", "invalid --secret: each part is KEY=VALUE"),
        ("id=x,type=ssh,src={file}", "invalid --secret: type=ssh is not a secret type"),
        ("id=x", "invalid --secret: secret x has no src=PATH or env=VAR"),
        ("id=x,src={missing}", "--secret x: the file {missing} does not exist"),
        ("id=x,src={folder}", "--secret x: {folder} is not a regular file"),
        ("id=x,env=IMGFRONT_TEST_UNSET", "--secret x: the environment variable IMGFRONT_TEST_UNSET is not set"),
        ("type=env,id=IMGFRONT_TEST_UNSET", "the environment variable IMGFRONT_TEST_UNSET is not set"),
    ],
)
def test_a_bad_secret_is_one_line_and_exit_2_before_any_build(
    podman_node, make_context, run_imgfront, tmp_path: Path, secret: str, message: str | None
) -> None:
    secret_file = tmp_path / "key.txt"
    secret_file.write_text("the value hunter2\n")
    names = {"file": secret_file, "missing": tmp_path / "missing.txt", "folder": tmp_path}
    context = make_context(
        BUSYBOX_CONTAINERFILE + "RUN --mount=type=secret,id=key.txt grep -q 'value hun' /run/secrets/key.txt\n"
    )
    env = {k: v for k, v in podman_node.env.items() if k != "IMGFRONT_TEST_UNSET"}
    result = run_imgfront(
        ["build", "--secret", secret.format(**names), "--progress", "plain", "-t", "secret-bad:1", context], env
    )
    if message is None:
        assert result.returncode == 0, result.stderr
        assert "hunter2" not in result.stderr + result.stdout
        return
    assert result.returncode == 2, result.stderr
    assert len(one_line(result.stderr)) == 1, result.stderr
    assert message.format(**names) in result.stderr
    assert "STEP" not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_ssh_is_refused_naming_secret_instead(podman_node, make_context, run_imgfront) -> None:
    context = make_context(BUSYBOX_CONTAINERFILE)
    result = run_imgfront(["build", "--ssh", "default", context], podman_node.env)
    assert result.returncode == 2, result.stderr
    assert one_line(result.stderr) == [
        "imgfront: --ssh is not supported: podman's build API cannot forward an ssh agent or key, in any version"
    ]
    assert "--secret id=ID,src=PATH" in result.stderr and "STEP" not in result.stderr


def test_a_docker_node_refuses_secrets_before_any_build_naming_it(
    podman_node, dockerd, make_context, run_imgfront, tmp_path: Path
) -> None:
    """Docker's legacy builder has no secret mounts: the farm is refused as a whole, before the podman node builds."""
    key = tmp_path / "key"
    key.write_text("docker never sees this\n")
    context = make_context(BUSYBOX_CONTAINERFILE + "RUN --mount=type=secret,id=key true\n")
    result = run_imgfront(
        ["build", "--secret", f"id=key,src={key}", "--node", f"docker+{dockerd.url}?name=dock", context],
        podman_node.env,
    )
    assert result.returncode == 2, result.stderr
    assert one_line(result.stderr) == ["imgfront: --secret is not supported on docker nodes (dock)"]
    assert "STEP" not in result.stderr and "never sees" not in result.stderr
