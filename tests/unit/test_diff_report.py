"""`imgfront diff` on OCI layouts and archives built by hand: each kind of difference, and identical inputs."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from imgfront.cli.main import main
from imgfront.outputs.layout import tar_directory

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
T0 = 1_796_119_200  # 2026-12-01T10:00:00Z


@dataclass(frozen=True)
class File:
    data: bytes | None = b"x"  # None: a directory
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: int = T0
    link: str | None = None  # a symlink to this
    xattrs: Mapping[str, str] = field(default_factory=dict)


def tar_layer(files: Mapping[str, File]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, f in files.items():
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.mtime = f.mode, f.uid, f.gid, f.mtime
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in f.xattrs.items()}
            if f.link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, f.link
                archive.addfile(info)
            elif f.data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(f.data)
                archive.addfile(info, io.BytesIO(f.data))
    return out.getvalue()


def gz(data: bytes, mtime: int = 0, name: str = "") -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename=name, fileobj=out, mode="wb", mtime=mtime) as f:
        f.write(data)
    return out.getvalue()


@dataclass(frozen=True)
class Image:
    layers: Sequence[Mapping[str, File]] = ({"bin/": File(None, 0o755), "bin/tool": File(b"tool", 0o755)},)
    gzip_mtimes: Sequence[int] = ()
    created: str = "2026-12-01T10:00:00Z"
    labels: Mapping[str, str] = field(default_factory=dict)
    env: Sequence[str] = ("PATH=/bin",)
    history: Sequence[Mapping[str, Any]] = ()
    arch: str = "amd64"


class Layout:
    """An OCI layout written blob by blob, as buildx or imgfront write them (index.json -> one index)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def blob(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest).write_bytes(data)
        return f"sha256:{digest}"

    def descriptor(self, media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": self.blob(data), "size": len(data), **extra}

    def image(self, image: Image) -> dict[str, Any]:
        tars = [tar_layer(files) for files in image.layers]
        mtimes = list(image.gzip_mtimes) or [0] * len(tars)
        layers = [
            self.descriptor("application/vnd.oci.image.layer.v1.tar+gzip", gz(t, m))
            for t, m in zip(tars, mtimes, strict=True)
        ]
        config = {
            "architecture": image.arch,
            "os": "linux",
            "created": image.created,
            "config": {"Env": list(image.env), "Labels": dict(image.labels)},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]},
            "history": list(image.history) or [{"created": image.created, "created_by": "COPY tool"}],
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": self.descriptor("application/vnd.oci.image.config.v1+json", json.dumps(config).encode()),
            "layers": layers,
        }
        platform = {"architecture": image.arch, "os": "linux"}
        return self.descriptor(MANIFEST, json.dumps(manifest).encode(), platform=platform)

    def write(self, *images: Image, annotations: Mapping[str, str] | None = None) -> Path:
        index: dict[str, Any] = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [self.image(i) for i in images]}
        if annotations:
            index["annotations"] = dict(annotations)
        top = {"schemaVersion": 2, "manifests": [self.descriptor(INDEX, json.dumps(index).encode())]}
        (self.root / "index.json").write_text(json.dumps(top))
        return self.root


@pytest.fixture
def layouts(tmp_path):
    count = iter(range(100))

    def make(*images: Image, annotations: Mapping[str, str] | None = None) -> str:
        return f"oci:{Layout(tmp_path / f'layout{next(count)}').write(*images, annotations=annotations)}"

    return make


def run_diff(capsys, *args: str) -> tuple[int, str, str]:
    code = 0
    try:
        main(["diff", *args])
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


TWO = (Image(), Image(arch="arm64"))


def test_identical_layouts_exit_0(layouts, capsys):
    a, b = layouts(*TWO), layouts(*TWO)
    code, out, _ = run_diff(capsys, a, b)
    assert code == 0
    assert "are identical" in out


def test_a_changed_file_names_platform_layer_file_and_fields(layouts, capsys):
    second = {"bin/": File(None, 0o755), "bin/tool": File(b"tool", 0o755), "etc/hosts": File(b"a", mtime=T0)}
    changed = {**second, "etc/hosts": File(b"bb", mtime=T0 + 60)}
    base = Image(layers=(*Image().layers, second))
    a = layouts(base, replace(base, arch="arm64"))
    b = layouts(base, replace(base, arch="arm64", layers=(*Image().layers, changed)))
    code, out, _ = run_diff(capsys, a, b)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith("differ: linux/arm64")
    hosts = [line for line in lines if "/etc/hosts" in line]
    assert len(hosts) == 1
    assert hosts[0].startswith("linux/arm64: layer 2 of 2 differs: /etc/hosts: ")
    assert "size 1 vs 2" in hosts[0]
    assert "mtime 2026-12-01T10:00:00Z vs 2026-12-01T10:01:00Z" in hosts[0]
    assert "content sha256:" in hosts[0]
    assert not any(line.startswith("linux/amd64") for line in lines)
    assert not any("layer 1 of 2" in line for line in lines)  # the same first layer is not read


def test_gzip_header_mtime_alone_is_a_compression_difference(layouts, capsys):
    a, b = layouts(Image(gzip_mtimes=(0,))), layouts(Image(gzip_mtimes=(T0,)))
    code, out, _ = run_diff(capsys, a, b)
    assert code == 1
    assert "linux/amd64: layer 1 of 1 differs only in compression: gzip mtime 0 vs 2026-12-01T10:00:00Z" in out
    assert "/bin/tool" not in out  # the same tar: no file is listed


def test_gzip_header_name_and_os(tmp_path, capsys):
    from imgfront.oci.diff import read_gzip_header

    named = gz(b"data", mtime=T0, name="layer.tar")
    header, prefix = read_gzip_header(io.BytesIO(named))
    assert header is not None
    assert (header.name, header.mtime, prefix) == ("layer.tar", T0, named[: len(prefix)])
    assert header.fields()["gzip name"] == "layer.tar"
    plain, _ = read_gzip_header(io.BytesIO(b"not gzip at all"))
    assert plain is None


def test_the_same_files_in_another_order(layouts, capsys):
    files = {"a": File(b"1"), "b": File(b"2")}
    code, out, _ = run_diff(
        capsys, layouts(Image(layers=(files,))), layouts(Image(layers=(dict(reversed(files.items())),)))
    )
    assert code == 1
    assert "linux/amd64: layer 1 of 1 differs: member order (the same files) 2 members vs 2 members" in out


def test_config_fields_created_labels_env_and_history(layouts, capsys):
    a = layouts(Image(labels={"io.buildah.version": "1.28.2", "keep": "1"}, env=("PATH=/bin", "A=1")))
    b = layouts(
        Image(
            created="2026-12-01T10:05:00Z",
            labels={"io.buildah.version": "1.39.3", "keep": "1"},
            env=("PATH=/bin", "A=2"),
            history=[{"created": "2026-12-01T10:05:00Z", "created_by": "COPY tool"}],
        )
    )
    code, out, _ = run_diff(capsys, a, b)
    assert code == 1
    assert "linux/amd64: config differs: created 2026-12-01T10:00:00Z vs 2026-12-01T10:05:00Z" in out
    assert "label io.buildah.version 1.28.2 vs 1.39.3" in out
    assert "env A 1 vs 2" in out
    assert "history[0].created 2026-12-01T10:00:00Z vs 2026-12-01T10:05:00Z" in out
    assert "keep" not in out
    assert "layer" not in out  # the layers are the same blobs


def test_platform_sets_and_list_annotations(layouts, capsys):
    a = layouts(*TWO, annotations={"org.opencontainers.image.created": "then"})
    b = layouts(Image(), annotations={"org.opencontainers.image.created": "now"})
    code, out, _ = run_diff(capsys, a, b)
    assert code == 1
    assert "list: list differs: annotation org.opencontainers.image.created then vs now; platforms " in out
    assert '["linux/amd64", "linux/arm64"] vs ["linux/amd64"]' in out


def rewrite_list(ref: str, change) -> None:
    """Give the layout's list new bytes: change(index) returns the JSON text to store."""
    root = Path(ref.removeprefix("oci:"))
    top = json.loads((root / "index.json").read_text())
    blobs = root / "blobs" / "sha256"
    index = json.loads((blobs / top["manifests"][0]["digest"][7:]).read_text())
    layout = Layout.__new__(Layout)
    layout.root = root
    top["manifests"] = [layout.descriptor(INDEX, change(index).encode())]
    (root / "index.json").write_text(json.dumps(top))


def test_the_same_list_written_another_way_or_with_another_field(layouts, capsys):
    a, b = layouts(*TWO), layouts(*TWO)
    rewrite_list(b, lambda index: json.dumps(index, sort_keys=True))
    code, out, _ = run_diff(capsys, a, b)
    assert code == 1
    assert "list: list differs: bytes (the same JSON, written with another key order)" in out
    rewrite_list(b, lambda index: json.dumps({**index, "subject": {"digest": "sha256:1"}}))
    code, out, _ = run_diff(capsys, a, b)
    assert "list: list differs: subject.digest absent vs sha256:1" in out


def test_a_config_written_with_another_key_order(layouts, capsys):
    a, b = layouts(Image()), layouts(Image())
    root = Path(b.removeprefix("oci:"))
    layout = Layout.__new__(Layout)
    layout.root = root
    blobs = root / "blobs" / "sha256"
    top = json.loads((root / "index.json").read_text())
    index = json.loads((blobs / top["manifests"][0]["digest"][7:]).read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_text())
    config = json.loads((blobs / manifest["config"]["digest"][7:]).read_text())
    manifest["config"] = layout.descriptor(manifest["config"]["mediaType"], json.dumps(config, sort_keys=True).encode())
    index["manifests"][0] = {
        **layout.descriptor(MANIFEST, json.dumps(manifest).encode()),
        "platform": {"architecture": "amd64", "os": "linux"},
    }
    top["manifests"] = [layout.descriptor(INDEX, json.dumps(index).encode())]
    (root / "index.json").write_text(json.dumps(top))
    code, out, _ = run_diff(capsys, a, b)
    assert code == 1
    assert "linux/amd64: config differs: bytes (the same JSON, written with another key order)" in out


def test_file_presence_mode_owner_link_and_xattrs(layouts, capsys):
    files = {
        "bin/": File(None, 0o755),
        "bin/tool": File(b"tool", 0o755),
        "bin/sh": File(link="tool"),
        "gone": File(b"g"),
        "cap": File(b"c", xattrs={"security.capability": "x"}),
    }
    other = {
        "bin/": File(None, 0o755),
        "bin/tool": File(b"tool", 0o4755, uid=1000, gid=1000),
        "bin/sh": File(link="busybox"),
        "new": File(b"n"),
        "cap": File(b"c", xattrs={"security.capability": "y"}),
    }
    code, out, _ = run_diff(capsys, layouts(Image(layers=(files,))), layouts(Image(layers=(other,))))
    assert code == 1
    assert "/bin/tool: mode 0755 vs 4755; uid 0 vs 1000; gid 0 vs 1000" in out
    assert "/bin/sh: link tool vs busybox" in out
    assert "/gone: presence file, 1 bytes vs absent" in out
    assert "/new: presence absent vs file, 1 bytes" in out
    assert "/cap: pax SCHILY.xattr.security.capability x vs y" in out


def test_json_output(layouts, capsys):
    code, out, _ = run_diff(capsys, "--json", layouts(Image(gzip_mtimes=(0,))), layouts(Image(gzip_mtimes=(5,))))
    assert code == 1
    data = json.loads(out)
    assert data["identical"] is False
    assert data["platforms"] == ["linux/amd64"]
    kinds = [(d["scope"], d["part"], d["field"], d["layer"]) for d in data["differences"]]
    assert ("linux/amd64", "compression", "gzip mtime", 1) in kinds
    assert ("linux/amd64", "manifest", "digest", None) in kinds
    code, out, _ = run_diff(capsys, "--json", layouts(Image()), layouts(Image()))
    assert code == 0
    assert json.loads(out)["differences"] == []


def test_many_files_are_capped_per_layer_and_times_alone_make_one_line(layouts, capsys):
    many = {f"f{i:02}": File(b"x") for i in range(30)}
    changed = {name: replace(f, data=b"y") for name, f in many.items()}
    a, b = layouts(Image(layers=(many,))), layouts(Image(layers=(changed,)))
    code, out, _ = run_diff(capsys, "--max-files", "5", a, b)
    assert code == 1
    assert sum(" content " in line for line in out.splitlines()) == 5
    assert "linux/amd64: layer 1 of 1 differs: and 25 more files (--max-files 0 shows all)" in out
    code, out, _ = run_diff(capsys, "--max-files", "0", a, b)
    assert sum(" content " in line for line in out.splitlines()) == 30

    later = {**{name: replace(f, mtime=T0 + 1) for name, f in many.items()}, "f00": File(b"z", mtime=T0 + 1)}
    code, out, _ = run_diff(capsys, layouts(Image(layers=(many,))), layouts(Image(layers=(later,))))
    lines = [line for line in out.splitlines() if line.startswith("linux/amd64: layer")]
    assert lines[0].startswith("linux/amd64: layer 1 of 1 differs: /f00: content ")  # what changed comes first
    assert lines[1] == (
        "linux/amd64: layer 1 of 1 differs: 29 files differ only in mtime "
        "(2026-12-01T10:00:00Z vs 2026-12-01T10:00:01Z), e.g. /f01, /f02, /f03"
    )


def test_oci_archive_reads_as_its_layout(layouts, tmp_path, capsys):
    a, b = layouts(*TWO), layouts(Image(), Image(arch="arm64", created="2026-12-02T00:00:00Z"))
    archive = tmp_path / "a.tar"
    tar_directory(Path(a.removeprefix("oci:")), archive)
    assert run_diff(capsys, f"oci-archive:{archive}", a)[0] == 0
    code, out, _ = run_diff(capsys, f"oci-archive:{archive}", b.replace("oci:", "oci-layout:"))
    assert code == 1
    assert "linux/arm64: config differs: created" in out


def test_an_image_against_a_list_compares_its_platform(layouts, tmp_path, capsys):
    single = Layout(tmp_path / "single")
    entry = single.image(Image(arch="arm64", created="2026-12-02T00:00:00Z"))
    (single.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    code, out, _ = run_diff(capsys, layouts(*TWO), f"oci:{single.root}")
    assert code == 1
    assert "list: list differs: kind list" in out
    assert "linux/arm64: config differs: created" in out


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("oci:/nonexistent/layout", "is not an OCI image layout"),
        ("oci-archive:/nonexistent.tar", "no file"),
        ("docker-archive:/x.tar", "unsupported transport"),
        ("containers-storage:", "no image name"),
        ("docker://Bad_Name:1", "invalid image name"),
    ],
)
def test_bad_input_is_one_line_exit_2(layouts, capsys, ref, says):
    code, out, err = run_diff(capsys, ref, layouts(Image()))
    assert code == 2
    assert out == ""
    assert says in err.splitlines()[0]
    assert "Traceback" not in err


def test_an_unreachable_registry_is_exit_2(layouts, capsys):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = run_diff(capsys, f"docker://127.0.0.1:{port}/app:1", layouts(Image()), "--tls-verify=false")
    assert code == 2
    assert out == ""
    assert err.splitlines()[0] == f"imgfront: 127.0.0.1:{port}: cannot reach the registry (ConnectionError)"


def test_a_broken_layer_is_exit_2_not_a_difference(layouts, capsys):
    a, b = layouts(Image()), layouts(Image(layers=({"other": File()},)))
    blobs = Path(b.removeprefix("oci:")) / "blobs" / "sha256"
    layer = next(p for p in blobs.iterdir() if p.read_bytes().startswith(b"\x1f\x8b"))
    layer.write_bytes(layer.read_bytes()[:20] + b"\xff" * 20)
    code, out, err = run_diff(capsys, a, b)
    assert code == 2, out + err
    assert "cannot read layer" in err.splitlines()[0]
    assert "Traceback" not in err
