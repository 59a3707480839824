"""Reproducible images: rewrite an exported image into one canonical OCI image for a SOURCE_DATE_EPOCH.

The same sources built by podman 4.3, podman 5.x or Docker, on any machine, at any time, come out of
`normalise` with the same bytes, so the same manifest digest. What each engine or run writes differently, and
what is done about it (docs/reproducible.md has the list with the evidence):

- layers: each tar member is written again with a canonical header (mtime clamped to the epoch, no atime or
  ctime, no owner names, PAX), in one order (by path), with hard links pointing at the first name of their
  group; mount points that RUN steps leave behind are dropped; gzip with fixed settings;
- config: `created` and history are the epoch; tool and machine fields go; diff_ids are recomputed;
- manifest: OCI media types; annotations that name the build's base go.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import json
import posixpath
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from imgfront.errors import EngineError, UsageError
from imgfront.images.blobs import OCI_CONFIG, OCI_MANIFEST, BlobStore, Descriptor
from imgfront.images.layers import open_layer

OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# zlib's default: as small as 9 within a few percent, at about twice its speed.
GZIP_LEVEL = 6

# Top-level config fields that say what the image is; everything else (Docker's `container`,
# `container_config`, `docker_version`, `id`, `parent`, buildkit's build info) says where and how it was made.
CONFIG_FIELDS = ("architecture", "os", "os.version", "os.features", "variant", "author", "config")
# The runtime settings a Containerfile can set. Docker's `Hostname`, `Domainname`, `Image`, `Attach*`, `Tty`,
# `OpenStdin` and `StdinOnce` are per build container, and `ArgsEscaped` is Windows-only.
RUNTIME_FIELDS = (
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
    "Healthcheck",
    "OnBuild",
    "Shell",
)
# Labels that name the tool that built the image, not the image.
TOOL_LABELS = frozenset({"io.buildah.version"})
# buildah points these at its intermediate image (a different digest on every run, even FROM scratch);
# Docker writes none.
DROPPED_ANNOTATION_PREFIXES = ("org.opencontainers.image.base.",)
# xattrs that are the host's security policy, not the image's.
DROPPED_XATTRS = frozenset({"security.selinux"})
_XATTR_PREFIXES = ("SCHILY.xattr.", "LIBARCHIVE.xattr.")

# What a RUN step's container leaves in its layer when the path was missing below: empty files it
# bind-mounted over, and empty folders it made to mount into. Dropped only from a layer above the first (the
# first is a base image's or a COPY's, where nothing ran) and only where no lower layer has the path.
MOUNT_POINT_FILES = frozenset({"etc/hostname", "etc/hosts", "etc/resolv.conf", "run/.containerenv", ".dockerenv"})
# Deepest first: a folder emptied by dropping its mount points is dropped after them.
MOUNT_POINT_DIRS = ("run/secrets", "etc", "run", "dev", "proc", "sys")
_MOUNT_POINTS = MOUNT_POINT_FILES | frozenset(MOUNT_POINT_DIRS)


def timestamp(epoch: int) -> str:
    """RFC 3339 in UTC, to the second: 1970-01-01T00:00:00Z."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def normalise(store: BlobStore, manifest: Descriptor, epoch: int) -> Descriptor:
    """Write the canonical form of MANIFEST's image into STORE for EPOCH; return its OCI manifest's descriptor.

    Pure in its inputs: the same image content gives the same bytes, whatever engine exported it, in which
    archive form, with which compression. Normalising the result again gives it back unchanged.
    """
    if epoch < 0:
        raise UsageError(f"SOURCE_DATE_EPOCH must be a whole number of seconds since 1970, not {epoch}")
    original = store.json(manifest.digest)
    config = store.json(original["config"]["digest"])
    below: set[str] = set()
    layers: list[Descriptor] = []
    diff_ids: list[str] = []
    for position, layer in enumerate(original.get("layers") or []):
        descriptor, diff_id = _normalise_layer(store, layer["digest"], epoch, below if position else None)
        layers.append(descriptor)
        diff_ids.append(diff_id)
    config_data = canonical_json(normalise_config(config, diff_ids, epoch))
    config_digest = store.add_bytes(config_data)
    data: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor(OCI_CONFIG, config_digest, len(config_data)).to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    annotations = {
        key: value
        for key, value in (original.get("annotations") or {}).items()
        if not key.startswith(DROPPED_ANNOTATION_PREFIXES)
    }
    if annotations:
        data["annotations"] = annotations
    body = canonical_json(data)
    return Descriptor(OCI_MANIFEST, store.add_bytes(body), len(body), manifest.platform)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def normalise_config(config: dict[str, Any], diff_ids: list[str], epoch: int) -> dict[str, Any]:
    """The fields every engine agrees on, with `created` and history at EPOCH and the given diff_ids.

    History keeps one entry per layer and nothing but its time: each engine words `created_by` its own way
    (buildah's `#(nop) COPY file:<hash> in /x`, buildkit's `COPY x /x # buildkit`), buildah's `comment` names
    an intermediate image, and which instructions get an `empty_layer` entry differs too.
    """
    created = timestamp(epoch)
    out = {key: config[key] for key in CONFIG_FIELDS if key in config and not _empty(config[key])}
    runtime = {key: value for key, value in (out.get("config") or {}).items() if key in RUNTIME_FIELDS}
    if "Labels" in runtime:
        runtime["Labels"] = {k: v for k, v in (runtime["Labels"] or {}).items() if k not in TOOL_LABELS}
    if runtime.get("WorkingDir") == "/":  # podman 5 writes the default out; 4.3 and Docker leave it unset
        del runtime["WorkingDir"]
    runtime = {key: value for key, value in runtime.items() if not _empty(value)}
    out.pop("config", None)
    if runtime:
        out["config"] = runtime
    out["created"] = created
    out["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    out["history"] = [{"created": created} for _ in diff_ids]
    return out


class _HashingWriter(io.RawIOBase):
    """Passes writes on to TARGET, hashing them: a layer's diff_id as it is compressed."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.hasher = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.hasher.update(data)
        self.target.write(data)
        return len(data)


def _name(name: str) -> str:
    return posixpath.normpath(name.lstrip("/")) if name.strip("/") else "."


def _order(name: str) -> tuple[str, ...]:
    """By path component, so a folder's content follows it before any sibling whose name merely extends it."""
    return () if name == "." else tuple(name.split("/"))


@dataclass(frozen=True)
class _Entry:
    """One member to write: its canonical name, the member whose header and data it takes, and a link target."""

    name: str
    source: tarfile.TarInfo
    link: str | None = None


def _drop_mount_points(members: dict[str, tarfile.TarInfo], below: set[str] | None) -> None:
    if below is None:
        below = set()  # the first layer: keep everything, only note what it has
    else:
        for name in MOUNT_POINT_FILES - below:
            member = members.get(name)
            if member is not None and member.isreg() and member.size == 0:
                del members[name]
        for name in MOUNT_POINT_DIRS:
            member = members.get(name)
            if member is None or not member.isdir() or name in below:
                continue
            if not any(other.startswith(name + "/") for other in members):
                del members[name]
    below.update(name for name in members if name in _MOUNT_POINTS)


def _plan(members: Iterable[tarfile.TarInfo]) -> list[_Entry]:
    """Every member once (the last of a name wins, as on extraction), by path, hard links after their target.

    A hard link group's content goes under the name that sorts first and the others link to it, so the
    result does not depend on which name the engine happened to write first.
    """
    by_name = {_name(member.name): member for member in members}
    groups: dict[str, list[str]] = {}
    dangling: dict[str, str] = {}
    for name, member in by_name.items():
        if not member.islnk():
            continue
        target, seen = _name(member.linkname), {name}
        while target in by_name and by_name[target].islnk() and target not in seen:
            seen.add(target)
            target = _name(by_name[target].linkname)
        if target in by_name and not by_name[target].islnk():
            groups.setdefault(target, []).append(name)
        else:
            dangling[name] = target
    entries = [
        _Entry(name, member, dangling.get(name))
        for name, member in by_name.items()
        if not (member.islnk() and name not in dangling) and name not in groups
    ]
    for target, links in groups.items():
        holder, *others = sorted([target, *links], key=_order)
        entries.append(_Entry(holder, by_name[target]))
        entries.extend(_Entry(other, by_name[target], holder) for other in others)
    return sorted(entries, key=lambda entry: _order(entry.name))


def _header(entry: _Entry, epoch: int) -> tarfile.TarInfo:
    source = entry.source
    info = tarfile.TarInfo(entry.name)
    if entry.link is not None:
        info.type, info.linkname = tarfile.LNKTYPE, entry.link
    elif source.isreg():
        info.type, info.size = tarfile.REGTYPE, source.size
    else:
        info.type = source.type
        if source.issym():
            info.linkname = source.linkname
        if source.ischr() or source.isblk():
            info.devmajor, info.devminor = source.devmajor, source.devminor
    info.mode = source.mode & 0o7777
    info.uid, info.gid = source.uid, source.gid
    info.uname = info.gname = ""
    info.mtime = min(int(source.mtime), epoch)
    xattrs = {
        key: value
        for key, value in source.pax_headers.items()
        if key.startswith(_XATTR_PREFIXES) and key.split(".xattr.", 1)[1] not in DROPPED_XATTRS
    }
    info.pax_headers = dict(sorted(xattrs.items()))
    return info


def _normalise_layer(store: BlobStore, digest: str, epoch: int, below: set[str] | None) -> tuple[Descriptor, str]:
    """The canonical gzip layer and its diff_id; BELOW (None for the first layer) collects mount points seen."""
    with open_layer(store, digest) as plain, tempfile.TemporaryFile(dir=store.root) as out:
        try:
            with tarfile.open(fileobj=plain, mode="r:") as source:
                members = {_name(member.name): member for member in source.getmembers()}
                _drop_mount_points(members, below)
                hashing: _HashingWriter
                with gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=out, mtime=0) as zipped:
                    hashing = _HashingWriter(zipped)  # type: ignore[arg-type]
                    with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as target:
                        for entry in _plan(members.values()):
                            info = _header(entry, epoch)
                            data = source.extractfile(entry.source) if info.isreg() else None
                            target.addfile(info, data)
        except tarfile.TarError as e:
            raise EngineError(f"layer {digest[:19]} is not a valid tar: {e}") from None
        size = out.tell()
        out.seek(0)
        compressed = store.add_file(out)
    return Descriptor(OCI_LAYER_GZIP, compressed, size), f"sha256:{hashing.hasher.hexdigest()}"
