"""Reproducible images without an engine: synthetic exports, as each engine writes them, normalised to one digest."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from imgfront.errors import EngineError, UsageError
from imgfront.images.blobs import OCI_MANIFEST, BlobStore, Descriptor
from imgfront.images.normalise import OCI_LAYER_GZIP, normalise

EPOCH = 1_700_000_000
LATER = EPOCH + 86_400  # the time of a build: after the sources' last commit
OLDER = EPOCH - 86_400  # a file that was not touched since before it
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class File:
    """A tar member as an engine writes it; `link` is a hard link's target, `symlink` a symbolic link's."""

    name: str
    data: bytes | None = b""  # None: a folder
    mode: int = 0o644
    mtime: float = LATER
    uname: str = "root"
    link: str | None = None
    symlink: str | None = None
    pax: dict[str, str] = field(default_factory=dict)


def tar_layer(files: Sequence[File], tar_format: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tar_format) as archive:
        for f in files:
            info = tarfile.TarInfo(f.name)
            info.mode, info.mtime, info.uname, info.gname = f.mode, f.mtime, f.uname, f.uname
            info.pax_headers = dict(f.pax)
            if f.link is not None:
                info.type, info.linkname = tarfile.LNKTYPE, f.link
            elif f.symlink is not None:
                info.type, info.linkname = tarfile.SYMTYPE, f.symlink
            elif f.data is None:
                info.type = tarfile.DIRTYPE
            else:
                info.size = len(f.data)
            archive.addfile(info, io.BytesIO(f.data) if info.isreg() else None)
    return out.getvalue()


def gzipped(data: bytes, name: str = "", mtime: int = 0, level: int = 6) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=out, mtime=mtime, compresslevel=level) as z:
        z.write(data)
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plain(layer: bytes) -> bytes:
    return gzip.decompress(layer) if layer[:2] == GZIP_MAGIC else layer


def config_json(layers: Sequence[bytes], **extra: Any) -> bytes:
    """What buildah writes by default; EXTRA adds or replaces top-level fields (Docker's among them)."""
    config: dict[str, Any] = {
        "created": "2026-12-02T13:14:12.654507537Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hi"],
            "Cmd": ["cat", "/app/hello.txt"],
            "Labels": {"io.buildah.version": "1.28.2", "org.example.name": "demo"},
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha(plain(x))}" for x in layers]},
        "history": [
            {"created": "2026-12-02T13:14:09.9Z", "created_by": "/bin/sh -c #(nop) COPY file:01b0 in /bin/busybox "},
            {"created": "2026-12-02T13:14:11.0Z", "created_by": "|1 TARGETARCH=amd64 /bin/sh -c mkdir /data"},
            {"created": "2026-12-02T13:14:12.5Z", "created_by": "/bin/sh -c #(nop) LABEL x", "empty_layer": True},
        ],
    }
    config.update(extra)
    return json.dumps(config, indent=2).encode()


def tar_files(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return out.getvalue()


def oci_archive(layers: Sequence[bytes], config: bytes, annotations: dict[str, str] | None = None) -> bytes:
    def media(layer: bytes) -> str:
        return "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if layer[:2] == GZIP_MAGIC else "")

    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{sha(config)}"},
        "layers": [{"mediaType": media(x), "digest": f"sha256:{sha(x)}", "size": len(x)} for x in layers],
    }
    manifest["config"]["size"] = len(config)
    if annotations:
        manifest["annotations"] = annotations
    body = json.dumps(manifest).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": f"sha256:{sha(body)}"}]}
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(index).encode()}
    for data in (body, config, *layers):
        files[f"blobs/sha256/{sha(data)}"] = data
    return tar_files(files)


def docker_archive(layers: Sequence[bytes], config: bytes) -> bytes:
    """`docker save`: plain layer tars under per-layer folders, a config named by its digest."""
    files = {f"{sha(config)}.json": config}
    names = []
    for i, layer in enumerate(layers):
        files[f"v1id{i}/layer.tar"] = layer
        names.append(f"v1id{i}/layer.tar")
    files["manifest.json"] = json.dumps([{"Config": f"{sha(config)}.json", "RepoTags": None, "Layers": names}]).encode()
    return tar_files(files)


def chunks(data: bytes, size: int = 4096) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def imported(tmp_path: Path, archive: bytes) -> tuple[BlobStore, Descriptor]:
    store = BlobStore(tmp_path / "store")
    return store, store.import_archive(chunks(archive))


def normalised(tmp_path: Path, archive: bytes, epoch: int = EPOCH) -> tuple[BlobStore, Descriptor]:
    store, manifest = imported(tmp_path, archive)
    return store, normalise(store, manifest, epoch)


def members(store: BlobStore, manifest: Descriptor, layer: int) -> list[tarfile.TarInfo]:
    digest = store.json(manifest.digest)["layers"][layer]["digest"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(store.read(digest)))) as archive:
        return archive.getmembers()


# Two layers as podman 4.3 exports them: busybox copied in, then a RUN that made files, a hard link and /run.
BASE = [File("bin", None, 0o755, mtime=LATER), File("bin/busybox", b"\x7fELF busybox", 0o755, mtime=OLDER)]
RUN = [
    File("data", None, 0o755),
    File("data/hard.txt", b"built\n"),
    File("data/out.txt", link="data/hard.txt"),
    File("data/sh", symlink="/bin/busybox", mode=0o777),
    File("run", None, 0o755),
]


def podman_export(base: Sequence[File] = BASE, run: Sequence[File] = RUN, **config: Any) -> bytes:
    layers = [gzipped(tar_layer(base)), gzipped(tar_layer(run))]
    return oci_archive(layers, config_json(layers, **config), {"org.opencontainers.image.base.digest": "sha256:7a39"})


def docker_export(base: Sequence[File] = BASE, run: Sequence[File] = RUN) -> bytes:
    """The same content as Docker writes it: GNU tar, no owner names, other order and times, other config fields."""

    def docker(files: Sequence[File]) -> list[File]:
        return [replace(f, uname="", mtime=f.mtime + 7 if f.mtime > EPOCH else f.mtime) for f in reversed(files)]

    # Docker names the other file of the hard link first; /run is never committed by Docker.
    run = [
        File("data/out.txt", b"built\n") if f.name == "data/hard.txt" else f
        for f in run
        if f.name not in ("run", "data/out.txt")
    ] + [File("data/hard.txt", link="data/out.txt")]
    layers = [tar_layer(docker(base), tarfile.GNU_FORMAT), tar_layer(docker(run), tarfile.GNU_FORMAT)]
    extra = {
        "created": "2026-12-02T13:20:00.123Z",
        "container": "3f2c9e",
        "docker_version": "20.10.24+dfsg1",
        "container_config": {"Hostname": "3f2c9e", "Cmd": ["/bin/sh", "-c", "#(nop) LABEL x"]},
        "config": {
            "Hostname": "",
            "Domainname": "",
            "User": "",
            "AttachStdin": False,
            "Tty": False,
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hi"],
            "Cmd": ["cat", "/app/hello.txt"],
            "Image": "sha256:c9320017059",
            "Volumes": None,
            "WorkingDir": "",
            "Entrypoint": None,
            "OnBuild": None,
            "Labels": {"org.example.name": "demo"},
        },
        "history": [
            {"created": "2026-12-02T13:19:58Z", "created_by": "/bin/sh -c #(nop) COPY file:99ab in /bin/busybox "},
            {"created": "2026-12-02T13:19:59Z", "created_by": "/bin/sh -c mkdir /data"},
        ],
    }
    return docker_archive(layers, config_json(layers, **extra))


def test_podman_and_docker_exports_of_the_same_content_normalise_to_one_digest(tmp_path: Path) -> None:
    _, podman = normalised(tmp_path / "podman", podman_export())
    _, docker = normalised(tmp_path / "docker", docker_export())
    assert podman.digest == docker.digest
    assert podman.media_type == OCI_MANIFEST


def test_member_order_owner_names_tar_format_and_compression_do_not_change_the_digest(tmp_path: Path) -> None:
    layers = [
        gzipped(tar_layer(list(reversed(BASE)), tarfile.USTAR_FORMAT), name="layer.tar", mtime=LATER, level=9),
        tar_layer([replace(f, uname="builder", pax={"atime": "1.5", "ctime": "2.5"}) for f in RUN[::-1]]),
    ]
    _, other = normalised(tmp_path / "other", oci_archive(layers, config_json(layers)))
    _, podman = normalised(tmp_path / "podman", podman_export())
    assert other.digest == podman.digest


def test_a_later_build_of_the_same_sources_gives_the_same_digest(tmp_path: Path) -> None:
    def later(files: Sequence[File]) -> list[File]:
        return [replace(f, mtime=f.mtime + 3600.25) if f.mtime > EPOCH else f for f in files]

    _, first = normalised(tmp_path / "a", podman_export())
    _, second = normalised(tmp_path / "b", podman_export(later(BASE), later(RUN), created="2027-01-01T00:00:00Z"))
    assert first.digest == second.digest


@pytest.mark.parametrize(
    "change",
    [
        {"run": [*RUN[:1], File("data/hard.txt", b"other\n"), *RUN[2:]]},
        {"run": [*RUN, File("data/new.txt", b"")]},
        {"base": [BASE[0], replace(BASE[1], mode=0o700)]},
        {"base": [BASE[0], replace(BASE[1], mtime=OLDER - 1)]},
    ],
    ids=["file-content", "new-file", "mode", "mtime-before-epoch"],
)
def test_a_changed_file_changes_the_digest(tmp_path: Path, change: dict[str, list[File]]) -> None:
    _, same = normalised(tmp_path / "a", podman_export())
    _, changed = normalised(tmp_path / "b", podman_export(**change))  # type: ignore[arg-type]
    assert same.digest != changed.digest


@pytest.mark.parametrize(
    "runtime",
    [
        {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hello"]},
        {"Labels": {"io.buildah.version": "1.28.2", "org.example.name": "other"}},
        {"Cmd": ["sh"]},
        {"WorkingDir": "/app"},
    ],
    ids=["env", "label", "cmd", "workdir"],
)
def test_a_changed_label_env_or_cmd_changes_the_digest(tmp_path: Path, runtime: dict[str, Any]) -> None:
    original = json.loads(config_json([]))["config"]
    _, same = normalised(tmp_path / "a", podman_export())
    _, changed = normalised(tmp_path / "b", podman_export(config={**original, **runtime}))
    assert same.digest != changed.digest


def test_the_default_working_dir_written_out_is_the_same_as_none(tmp_path: Path) -> None:
    original = json.loads(config_json([]))["config"]
    _, podman5 = normalised(tmp_path / "a", podman_export(config={**original, "WorkingDir": "/"}))
    _, podman4 = normalised(tmp_path / "b", podman_export())
    assert podman5.digest == podman4.digest


def test_normalising_a_normalised_image_gives_it_back(tmp_path: Path) -> None:
    for name, archive in (("podman", podman_export()), ("docker", docker_export())):
        store, once = normalised(tmp_path / name, archive)
        assert normalise(store, once, EPOCH) == once


def test_files_newer_than_the_epoch_get_the_epoch_and_older_ones_keep_their_time(tmp_path: Path) -> None:
    store, manifest = normalised(tmp_path, podman_export())
    times = {m.name: m.mtime for m in members(store, manifest, 0)}
    assert times == {"bin": EPOCH, "bin/busybox": OLDER}
    assert all(isinstance(t, int) for t in times.values())


def test_headers_are_pax_without_times_or_owner_names_and_xattrs_are_kept_sorted(tmp_path: Path) -> None:
    pax = {"SCHILY.xattr.user.b": "2", "SCHILY.xattr.user.a": "1", "SCHILY.xattr.security.selinux": "ctx", "atime": "1"}
    base = [BASE[0], replace(BASE[1], uname="root", mtime=LATER + 0.5, pax=pax)]
    store, manifest = normalised(tmp_path, podman_export(base=base))
    busybox = members(store, manifest, 0)[1]
    assert (busybox.uname, busybox.gname, busybox.uid, busybox.gid) == ("", "", 0, 0)
    assert list(busybox.pax_headers.items()) == [("SCHILY.xattr.user.a", "1"), ("SCHILY.xattr.user.b", "2")]
    layer = store.read(store.json(manifest.digest)["layers"][0]["digest"])
    assert b"atime" not in gzip.decompress(layer) and b"mtime" not in gzip.decompress(layer)


def test_a_hard_link_follows_its_target_under_the_first_name_of_its_group(tmp_path: Path) -> None:
    # The link is written before its target, and the target's name sorts after the link's.
    run = [File("z", b"content\n"), File("data", None, 0o755), File("data/a.txt", link="z"), File("data/b", link="z")]
    store, manifest = normalised(tmp_path, podman_export(run=run))
    written = [(m.name, m.type, m.linkname, m.size) for m in members(store, manifest, 1)]
    assert written == [
        ("data", tarfile.DIRTYPE, "", 0),
        ("data/a.txt", tarfile.REGTYPE, "", 8),
        ("data/b", tarfile.LNKTYPE, "data/a.txt", 0),
        ("z", tarfile.LNKTYPE, "data/a.txt", 0),
    ]


def test_mount_points_a_run_step_left_are_dropped_but_content_and_the_first_layer_kept(tmp_path: Path) -> None:
    base = [*BASE, File("etc", None, 0o755), File("etc/hosts", b""), File("proc", None, 0o755)]
    run = [
        *RUN,
        File("etc", None, 0o755),
        File("etc/hostname", b""),
        File("etc/resolv.conf", b"nameserver 10.0.0.1\n"),
        File("dev", None, 0o755),
        File("sys", None, 0o755),
        File("sys/kernel", None, 0o755),
    ]
    store, manifest = normalised(tmp_path, podman_export(base=base, run=run))
    assert [m.name for m in members(store, manifest, 0)] == ["bin", "bin/busybox", "etc", "etc/hosts", "proc"]
    names = [m.name for m in members(store, manifest, 1)]
    assert names == ["data", "data/hard.txt", "data/out.txt", "data/sh", "etc", "etc/resolv.conf", "sys", "sys/kernel"]


def test_a_run_layer_of_only_mount_points_drops_its_emptied_folder(tmp_path: Path) -> None:
    run = [*RUN, File("etc", None, 0o755), File("etc/hosts", b""), File("etc/resolv.conf", b"")]
    store, manifest = normalised(tmp_path, podman_export(run=run))
    assert "etc" not in [m.name for m in members(store, manifest, 1)]


def test_config_keeps_what_the_containerfile_set_with_created_and_history_at_the_epoch(tmp_path: Path) -> None:
    store, manifest = normalised(tmp_path, docker_export())
    data = store.json(manifest.digest)
    config = store.json(data["config"]["digest"])
    assert config == {
        "architecture": "amd64",
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GREETING=hi"],
            "Cmd": ["cat", "/app/hello.txt"],
            "Labels": {"org.example.name": "demo"},
        },
        "rootfs": {"type": "layers", "diff_ids": config["rootfs"]["diff_ids"]},
        "history": [{"created": "2023-11-14T22:13:20Z"}] * 2,
    }
    for layer, diff_id in zip(data["layers"], config["rootfs"]["diff_ids"], strict=True):
        assert f"sha256:{sha(gzip.decompress(store.read(layer['digest'])))}" == diff_id
        assert layer["mediaType"] == OCI_LAYER_GZIP
    body = store.read(data["config"]["digest"])
    assert body == json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def test_gzip_headers_carry_no_name_or_time(tmp_path: Path) -> None:
    store, manifest = normalised(tmp_path, podman_export())
    for layer in store.json(manifest.digest)["layers"]:
        header = store.read(layer["digest"])[:10]
        assert header[3] == 0  # flags: no name, comment or extra
        assert header[4:8] == b"\0\0\0\0"  # mtime


def test_user_annotations_stay_and_the_base_image_annotations_go(tmp_path: Path) -> None:
    layers = [gzipped(tar_layer(BASE))]
    annotations = {"org.opencontainers.image.base.name": "x", "org.example.team": "web"}
    store, manifest = normalised(tmp_path, oci_archive(layers, config_json(layers), annotations))
    assert store.json(manifest.digest)["annotations"] == {"org.example.team": "web"}


def test_a_negative_epoch_is_refused(tmp_path: Path) -> None:
    store, manifest = imported(tmp_path, podman_export())
    with pytest.raises(UsageError):
        normalise(store, manifest, -1)


def test_a_binary_capability_xattr_keeps_its_bytes(tmp_path: Path) -> None:
    cap = bytes([1, 0, 0, 2, 0, 0x20, *[0] * 14])  # cap_net_raw, as Debian's ping has it
    key = "SCHILY.xattr.security.capability"
    base = [BASE[0], replace(BASE[1], pax={key: cap.decode("utf-8", "surrogateescape")})]
    store, manifest = normalised(tmp_path, podman_export(base=base))
    busybox = members(store, manifest, 0)[1]
    assert busybox.pax_headers[key].encode("utf-8", "surrogateescape") == cap


def test_the_last_member_of_a_name_wins_and_whiteouts_and_links_into_lower_layers_stay(tmp_path: Path) -> None:
    run = [
        File("data", None, 0o755),
        File("data/x", b"first"),
        File("data/x", b"second"),
        File("bin/.wh.busybox"),
        File("data/lower", link="bin/busybox"),  # a hard link to a file of the layer below
    ]
    store, manifest = normalised(tmp_path, podman_export(run=run))
    written = {m.name: (m.type, m.linkname, m.size) for m in members(store, manifest, 1)}
    assert written == {
        "bin/.wh.busybox": (tarfile.REGTYPE, "", 0),
        "data": (tarfile.DIRTYPE, "", 0),
        "data/lower": (tarfile.LNKTYPE, "bin/busybox", 0),
        "data/x": (tarfile.REGTYPE, "", 6),
    }


def test_a_zstd_layer_is_refused_with_its_digest(tmp_path: Path) -> None:
    layers = [b"\x28\xb5\x2f\xfd" + b"\0" * 60]
    store, manifest = imported(tmp_path, oci_archive(layers, config_json([tar_layer(BASE)])))
    with pytest.raises(EngineError, match="zstd"):
        normalise(store, manifest, EPOCH)
