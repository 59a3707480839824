"""--secret as buildx writes it, read on this host before any build; and the upload a podman build sends: the
packed context as it is on disk, with each secret added in memory under a random name the `secrets`
parameter points at."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from fakes import DOCKER, PODMAN4

from imgfront.cli import main as cli
from imgfront.engines.upload import SECRET_PREFIX, Upload, archive_end, with_secrets
from imgfront.errors import UsageError
from imgfront.model import Secret
from imgfront.options import OPTIONS_BY_DEST, check_support, fit_engines, parse_secrets, secret_spec
from imgfront.run.context import pack
from imgfront.run.invocation import resolve

VALUE = b"s3cret value\nline two"


@pytest.mark.parametrize(
    ("item", "spec"),
    [
        ("id=token,src=/run/key.txt", ("token", "file", "/run/key.txt")),
        ("src=/run/key.txt", ("key.txt", "file", "/run/key.txt")),  # buildx: the id is the file's name
        ("id=token,source=/k", ("token", "file", "/k")),
        ("type=file,id=token,src=/k", ("token", "file", "/k")),
        ("id=token,env=GH_TOKEN", ("token", "env", "GH_TOKEN")),
        ("env=GH_TOKEN", ("GH_TOKEN", "env", "GH_TOKEN")),  # the id is the variable's name
        ("type=env,id=GH_TOKEN", ("GH_TOKEN", "env", "GH_TOKEN")),  # and the variable the id's
        ("type=env,id=token,src=GH_TOKEN", ("token", "env", "GH_TOKEN")),  # buildx reads src as the variable
        ('id=token,"src=/a,b"', ("token", "file", "/a,b")),  # csv quoting, as buildx parses it
    ],
)
def test_every_form_buildx_takes_gives_an_id_and_a_source(item: str, spec: tuple[str, str, str]) -> None:
    assert secret_spec(item) == spec


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("type=file", "no id (id=ID), and no src= or env= to take it from"),
        ("", "no id"),
        ("id=token", "secret token has no src=PATH or env=VAR"),
        ("id=t,src=/k,env=V", "give src= (a file) or env= (a variable), not both"),
        ("id=t,type=file,env=V", "type=file takes src=PATH, not env="),
        ("id=t,src=/k,mode=0400", "unknown key 'mode'"),
        ("id=t,type=ssh,src=/k", "type=ssh is not a secret type"),
        ("id=t,id=u,src=/k", "id= is given twice"),
        ("id=a/b,src=/k", "id 'a/b' may hold only letters"),
        ("ghp_pastedtoken", "each part is KEY=VALUE"),
    ],
)
def test_a_malformed_secret_is_refused_without_echoing_it(item: str, message: str) -> None:
    with pytest.raises(UsageError) as refused:
        secret_spec(item)
    assert refused.value.message.startswith("invalid --secret: ") and message in refused.value.message
    assert "ghp_pastedtoken" not in refused.value.message and "0400" not in refused.value.message


def test_secrets_are_read_here_and_never_show_in_a_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "key").write_bytes(VALUE)
    monkeypatch.setenv("FROM_ENV", "env value")
    secrets = parse_secrets([f"id=k,src={tmp_path / 'key'}", "env=FROM_ENV"])
    assert secrets == (Secret("k", VALUE, f"file {tmp_path / 'key'}"), Secret("FROM_ENV", b"env value", "env FROM_ENV"))
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    options = resolve({"context": str(tmp_path), "secret": [f"id=k,src={tmp_path / 'key'}"]}).options
    assert options.secrets == secrets[:1]
    assert b"s3cret" not in repr(options).encode() and "s3cret" not in repr(secrets)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("id=k,src={tmp}/missing", "--secret k: the file {tmp}/missing does not exist"),
        ("id=k,src={tmp}", "--secret k: {tmp} is not a regular file"),
        ("id=k,env=IMGFRONT_UNSET_VARIABLE", "--secret k: the environment variable IMGFRONT_UNSET_VARIABLE is not set"),
        ("id=k,src={tmp}/key,id=j", "invalid --secret: id= is given twice"),
    ],
)
def test_a_secret_that_cannot_be_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, item: str, message: str
) -> None:
    monkeypatch.delenv("IMGFRONT_UNSET_VARIABLE", raising=False)
    (tmp_path / "key").write_bytes(VALUE)
    with pytest.raises(UsageError) as refused:
        parse_secrets([item.format(tmp=tmp_path)])
    assert refused.value.message == message.format(tmp=tmp_path)


def test_an_unreadable_secret_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "key"
    key.write_bytes(VALUE)

    def denied(self: Path) -> bytes:  # root reads any file, so the refusal the kernel gives is played here
        raise PermissionError(13, "Permission denied", os.fspath(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(UsageError) as refused:
        parse_secrets([f"id=k,src={key}"])
    assert refused.value.message == f"--secret k: cannot read {key}: Permission denied"


def test_the_same_id_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(VALUE)
    with pytest.raises(UsageError) as refused:
        parse_secrets([f"id=k,src={tmp_path / 'key'}", f"id=k,src={tmp_path / 'key'}"])
    assert refused.value.message == "--secret k is given twice"


def test_docker_nodes_refuse_secrets_naming_the_node(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(VALUE)
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    options = resolve({"context": str(tmp_path), "secret": [f"id=k,src={tmp_path / 'key'}"]}).options
    fit_engines(options, "podman", True, [PODMAN4], print)
    with pytest.raises(UsageError) as refused:
        fit_engines(options, "podman", True, [PODMAN4, DOCKER], print)
    assert refused.value.message == "--secret is not supported on docker nodes (dock)"
    check_support(OPTIONS_BY_DEST["secret"], PODMAN4, lambda _: None)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["build", "--ssh", "default", "."], "imgfront: --ssh is not supported: podman's build API cannot forward"),
        (["build", "--secret", "id=x,value=hunter2", "."], "imgfront: invalid --secret: unknown key 'value'"),
        (["build", "-p", "p.yaml", "--secret", "env=HOME"], "imgfront: -p cannot take --secret"),
    ],
)
def test_ssh_and_bad_secrets_are_one_line_and_exit_2_before_any_engine(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], message: str
) -> None:
    monkeypatch.setenv("CONTAINER_HOST", "unix:///nonexistent/podman.sock")  # no engine is asked
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Containerfile").write_text("FROM scratch\n")
    (tmp_path / "p.yaml").write_text("name: p\nplatforms: [linux/amd64]\npipelines: []\n")
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("hint:")]
    assert exit_.value.code == 2 and len(lines) == 1 and message in lines[0], err
    assert "hunter2" not in err


def packed(tmp_path: Path) -> Path:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Containerfile").write_text("FROM scratch\nCOPY . .\n")
    (context / "data.bin").write_bytes(os.urandom(3000))
    return context


def test_the_upload_holds_each_secret_and_the_packed_file_does_not(tmp_path: Path) -> None:
    context = packed(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    packed_context = pack(context, context / "Containerfile", work)
    before = packed_context.tar.read_bytes()
    upload, specs = with_secrets(packed_context, [Secret("token", VALUE), Secret("other", b"two")])

    with upload.open() as stream:
        sent = b""
        while chunk := stream.read(1000):
            sent += chunk
        assert len(sent) == len(stream) == upload.size
    assert packed_context.tar.read_bytes() == before  # the file on disk is as packed
    assert VALUE not in before and b"two" not in before
    assert [p.name for p in work.iterdir()] == [packed_context.tar.name]  # and nothing else was written
    assert sent.startswith(before[: archive_end(packed_context.tar)[0]])  # the context is sent, not copied

    with tarfile.open(fileobj=io.BytesIO(sent)) as archive:
        members = {m.name: m for m in archive.getmembers()}
        names = [n for n in members if n.startswith(SECRET_PREFIX)]
        assert specs == [f"id=token,src={names[0]}", f"id=other,src={names[1]}"]
        assert archive.extractfile(names[0]).read() == VALUE  # type: ignore[union-attr]
        assert archive.extractfile(names[1]).read() == b"two"  # type: ignore[union-attr]
        assert {"Containerfile", "data.bin"} <= set(members)
        for name in names:
            assert members[name].mode == 0o600 and members[name].uid == os.getuid()
            assert len(name) == len(SECRET_PREFIX) + 32
    # Every request gets new names, so no Containerfile can know them in advance.
    again = with_secrets(packed_context, [Secret("token", VALUE)])[1]
    assert again[0] != specs[0]
    assert VALUE not in repr(upload).encode()


def test_without_secrets_the_packed_file_is_sent_as_it_is(tmp_path: Path) -> None:
    context = packed(tmp_path)
    packed_context = pack(context, context / "Containerfile", tmp_path)
    upload, specs = with_secrets(packed_context, [])
    assert (upload, specs) == (Upload(packed_context.tar), [])
    with upload.open() as stream:
        assert stream.read() == packed_context.tar.read_bytes() and len(stream) == packed_context.size
