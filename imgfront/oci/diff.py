"""Why two images or lists differ: list, then each platform's manifest, its config, then the files of its layers.

Pure comparison over `ImageSource` (manifests and blobs by digest); where they come from (local storage, a
registry, an OCI layout or archive) is `oci/sources.py`'s. Layers are streamed: only their file listings are kept.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import hashlib
import io
import json
import posixpath
import struct
import tarfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from imgfront.errors import ImgfrontError

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
CHUNK = 1 << 20
ABSENT = "absent"
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_OS = {0: "FAT", 3: "unix", 7: "macintosh", 11: "NTFS", 255: "unknown"}
_PAX_MAPPED = frozenset({"path", "linkpath", "size", "mtime", "uid", "gid", "uname", "gname"})


class DiffError(ImgfrontError):
    """An image could not be read while comparing; exit 2 (bad input)."""

    exit_code = 2


@dataclass(frozen=True)
class Node:
    """A manifest or index: its media type, digest and bytes."""

    media_type: str
    digest: str
    body: bytes

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body)
        except ValueError as e:
            raise DiffError(f"manifest {self.digest[:19]} is not JSON: {e}") from None
        if not isinstance(data, dict):
            raise DiffError(f"manifest {self.digest[:19]} is not a JSON object")
        return data


class ImageSource(Protocol):
    """What the comparison reads: the image or list a reference names, its instances, and blobs as streams."""

    label: str

    def root(self) -> Node: ...

    def instance(self, entry: Mapping[str, Any]) -> Node:
        """The image manifest an index entry names (a local source may export it first)."""
        ...

    def blob(self, digest: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...


@dataclass(frozen=True)
class Difference:
    """One difference; `first` and `second` are the two sides' values (ABSENT where a side has none)."""

    scope: str  # "list", or the platform ("linux/arm64"), or "image" when a side has no platform
    part: str  # list, manifest, config, compression, file
    field: str
    first: Any
    second: Any
    layer: int | None = None  # 1-based
    layers: tuple[int, int] | None = None  # each side's layer count
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "part": self.part,
            "field": self.field,
            "first": self.first,
            "second": self.second,
            "layer": self.layer,
            "layers": list(self.layers) if self.layers else None,
            "path": self.path,
        }


@dataclass
class Report:
    first: str
    second: str
    differences: list[Difference] = field(default_factory=list)
    platforms: list[str] = field(default_factory=list)  # those with differences, in order

    @property
    def identical(self) -> bool:
        return not self.differences

    def add(self, difference: Difference) -> None:
        self.differences.append(difference)
        if difference.scope != "list" and difference.scope not in self.platforms:
            self.platforms.append(difference.scope)

    def to_json(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "first": self.first,
            "second": self.second,
            "platforms": self.platforms,
            "differences": [d.to_json() for d in self.differences],
        }

    def lines(self, max_files: int = 20) -> list[str]:
        """Human-readable lines, the summary first; at most `max_files` file lines per layer (0: all)."""
        if self.identical:
            return [f"{self.first} and {self.second} are identical"]
        which = f": {', '.join(self.platforms)}" if self.platforms else ""
        out: list[str | tuple[str, int | None]] = [f"{self.first} and {self.second} differ{which}"]
        groups: dict[tuple[str, str, int | None, str | None], list[Difference]] = {}
        for d in self.differences:
            # One line per config field (a history entry's fields together); lists, manifests, files: one each.
            what = d.field.partition(".")[0] if d.part == "config" else d.path
            groups.setdefault((d.scope, d.part, d.layer, what), []).append(d)
        files: dict[tuple[str, int | None], list[list[Difference]]] = {}
        for (scope, part, layer, _), items in groups.items():
            fields = _fields_text(items)
            if part == "file":
                if (scope, layer) not in files:
                    files[(scope, layer)] = []
                    out.append((scope, layer))  # the layer's file lines go here, ranked
                files[(scope, layer)].append(items)
            elif part == "compression":
                out.append(f"{scope}: {_layer_text(items[0])} differs only in compression: {fields}")
            elif part == "layer":
                out.append(f"{scope}: {_layer_text(items[0])} differs: {fields}")
            else:
                out.append(f"{scope}: {part} differs: {fields}")
        lines: list[str] = []
        for item in out:
            lines.extend([item] if isinstance(item, str) else _file_lines(files[item], max_files))
        return lines


_SUBSTANCE = frozenset({"presence", "type", "content", "size", "link"})


def _fields_text(items: Sequence[Difference]) -> str:
    return "; ".join(f"{d.field} {_text(d.first)} vs {_text(d.second)}" for d in items)


def _file_lines(files: Sequence[Sequence[Difference]], max_files: int) -> list[str]:
    """A layer's files, what they hold first and times last; many files that differ only in mtime make one line."""
    prefix = f"{files[0][0].scope}: {_layer_text(files[0][0])} differs"

    def rank(items: Sequence[Difference]) -> int:
        names = {d.field for d in items}
        return 0 if names & _SUBSTANCE else 2 if names == {"mtime"} else 1

    ranked = sorted(files, key=rank)
    lines: list[str] = []
    only_mtime = [items for items in ranked if rank(items) == 2]
    if len(only_mtime) > 3:
        ranked = [items for items in ranked if rank(items) != 2]
        pairs = {(items[0].first, items[0].second) for items in only_mtime}
        first, second = min(pairs)
        times = f"{first} vs {second}" + (" and others" if len(pairs) > 1 else "")
        example = ", ".join(str(items[0].path) for items in only_mtime[:3])
        tail = f"{len(only_mtime)} files differ only in mtime ({times}), e.g. {example}"
    else:
        tail = ""
    shown = ranked[:max_files] if max_files else ranked
    lines.extend(f"{prefix}: {items[0].path}: {_fields_text(items)}" for items in shown)
    if len(ranked) > len(shown):
        lines.append(f"{prefix}: and {len(ranked) - len(shown)} more files (--max-files 0 shows all)")
    if tail:
        lines.append(f"{prefix}: {tail}")
    return lines


def _layer_text(d: Difference) -> str:
    assert d.layers is not None
    first, second = d.layers
    return f"layer {d.layer} of {first}" if first == second else f"layer {d.layer} of {first} vs {second}"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, sort_keys=True)


# -- the comparison ---------------------------------------------------------------------------------


def compare(first: ImageSource, second: ImageSource) -> Report:
    """Every difference between what the two sources name, most important first."""
    report = Report(first.label, second.label)
    a, b = first.root(), second.root()
    if a.digest == b.digest:
        return report
    if a.is_index and b.is_index:
        _compare_lists(first, a, second, b, report)
    elif not a.is_index and not b.is_index:
        ma, mb = a.json(), b.json()
        _compare_images(first, a, ma, second, b, mb, report, None)
    else:
        report.add(Difference("list", "list", "kind", _kind(a), _kind(b)))
        _compare_list_with_image(first, a, second, b, report)
    return report


def _kind(node: Node) -> str:
    return f"{'list' if node.is_index else 'image'} {node.media_type}"


def platform_key(entry: Mapping[str, Any]) -> str:
    """os/arch[/variant] of an index entry; arm64's variant v8 is the default and is left out."""
    spec = entry.get("platform") or {}
    os_, arch, variant = spec.get("os", "unknown"), spec.get("architecture", "unknown"), spec.get("variant")
    if arch == "arm64" and variant == "v8":
        variant = None
    return "/".join(str(p) for p in (os_, arch, variant) if p)


def _entries(index: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    keyed: dict[str, Mapping[str, Any]] = {}
    for entry in index.get("manifests") or []:
        key = platform_key(entry)
        n = 1
        while key in keyed:  # the same platform twice: both are compared, in order
            n += 1
            key = f"{platform_key(entry)}#{n}"
        keyed[key] = entry
    return keyed


def _compare_lists(first: ImageSource, a: Node, second: ImageSource, b: Node, report: Report) -> None:
    ia, ib = a.json(), b.json()
    add = report.add
    if a.media_type != b.media_type:
        add(Difference("list", "list", "media type", a.media_type, b.media_type))
    _compare_maps("list", "list", "annotation ", ia.get("annotations") or {}, ib.get("annotations") or {}, add)
    ea, eb = _entries(ia), _entries(ib)
    only_a, only_b = [k for k in ea if k not in eb], [k for k in eb if k not in ea]
    if only_a or only_b:
        add(Difference("list", "list", "platforms", sorted(ea), sorted(eb)))
    common = [k for k in ea if k in eb]
    if [k for k in ea if k in eb] != [k for k in eb if k in ea]:
        add(Difference("list", "list", "platform order", list(ea), list(eb)))
    before = len(report.differences)
    for key in common:
        x, y = ea[key], eb[key]
        for name in ("mediaType", "urls", "artifactType"):
            if x.get(name) != y.get(name):
                add(Difference("list", "list", f"{key} {name}", x.get(name, ABSENT), y.get(name, ABSENT)))
        _compare_maps("list", "list", f"{key} annotation ", x.get("annotations") or {}, y.get("annotations") or {}, add)
        _compare_maps("list", "list", f"{key} platform ", x.get("platform") or {}, y.get("platform") or {}, add)
    for key in common:
        x, y = ea[key], eb[key]
        if x.get("digest") == y.get("digest"):
            continue
        na, nb = first.instance(x), second.instance(y)
        if na.digest == nb.digest:  # local storage names an image by the manifest it keeps, not the one exported
            note = f"digest (the same image {na.digest} read from both: one side stores another manifest for it)"
            add(Difference(key, "manifest", note, str(x.get("digest")), str(y.get("digest"))))
            continue
        add(Difference(key, "manifest", "digest", str(x.get("digest")), str(y.get("digest"))))
        _compare_images(first, na, na.json(), second, nb, nb.json(), report, key)
    if len(report.differences) == before and not (only_a or only_b) and a.digest != b.digest:
        _compare_json("list", "list", ia, ib, (a.digest, b.digest), add)


def _compare_list_with_image(first: ImageSource, a: Node, second: ImageSource, b: Node, report: Report) -> None:
    """The image against the list's instance for the image's platform, when the list has one."""
    index_source, index_node, image_source, image_node = (first, a, second, b) if a.is_index else (second, b, first, a)
    image = image_node.json()
    key = _config_platform(image_source, image)
    entry = _entries(index_node.json()).get(key)
    if entry is None:
        return
    instance = index_source.instance(entry)
    if a.is_index:
        _compare_images(first, instance, instance.json(), second, image_node, image, report, key)
    else:
        _compare_images(first, image_node, image, second, instance, instance.json(), report, key)


def _config_platform(source: ImageSource, manifest: Mapping[str, Any]) -> str:
    config = _blob_json(source, str(manifest.get("config", {}).get("digest", "")))
    return platform_key({"platform": config})


def _blob_json(source: ImageSource, digest: str) -> dict[str, Any]:
    with source.blob(digest) as f:
        data = f.read()
    try:
        value = json.loads(data)
    except ValueError as e:
        raise DiffError(f"{source.label}: blob {digest[:19]} is not JSON: {e}") from None
    return value if isinstance(value, dict) else {}


def _compare_maps(scope: str, part: str, prefix: str, x: Mapping[str, Any], y: Mapping[str, Any], add: Any) -> None:
    for key in sorted(set(x) | set(y)):
        if x.get(key, ABSENT) != y.get(key, ABSENT):
            add(Difference(scope, part, f"{prefix}{key}", x.get(key, ABSENT), y.get(key, ABSENT)))


def _compare_images(
    first: ImageSource,
    a: Node,
    ma: Mapping[str, Any],
    second: ImageSource,
    b: Node,
    mb: Mapping[str, Any],
    report: Report,
    scope: str | None,
) -> None:
    if scope is None:
        ka, kb = _config_platform(first, ma), _config_platform(second, mb)
        scope = ka if ka == kb else "image"
    add = report.add
    before = len(report.differences)
    if a.media_type != b.media_type:
        add(Difference(scope, "manifest", "media type", a.media_type, b.media_type))
    _compare_maps(scope, "manifest", "annotation ", ma.get("annotations") or {}, mb.get("annotations") or {}, add)
    la, lb = list(ma.get("layers") or []), list(mb.get("layers") or [])
    if len(la) != len(lb):
        add(Difference(scope, "manifest", "layer count", len(la), len(lb)))
    ca, cb = ma.get("config") or {}, mb.get("config") or {}
    config_a, config_b = {}, {}
    if ca.get("digest") != cb.get("digest"):
        config_a = _blob_json(first, str(ca.get("digest", "")))
        config_b = _blob_json(second, str(cb.get("digest", "")))
        found = len(report.differences)
        _compare_configs(scope, config_a, config_b, add)
        if len(report.differences) == found:
            _compare_json(scope, "config", config_a, config_b, (str(ca.get("digest")), str(cb.get("digest"))), add)
    diff_a = list((config_a.get("rootfs") or {}).get("diff_ids") or [])
    diff_b = list((config_b.get("rootfs") or {}).get("diff_ids") or [])
    same_config = bool(ca.get("digest")) and ca.get("digest") == cb.get("digest")  # so are its diff_ids
    counts = (len(la), len(lb))
    for i in range(max(len(la), len(lb))):
        x, y = (la[i] if i < len(la) else None), (lb[i] if i < len(lb) else None)
        if x is None or y is None:
            add(Difference(scope, "layer", "digest", _digest(x), _digest(y), i + 1, counts))
            continue
        if x.get("digest") == y.get("digest"):
            continue
        same_tar = same_config or (i < len(diff_a) and i < len(diff_b) and diff_a[i] == diff_b[i])
        _compare_layers(first, x, second, y, same_tar, report, scope, i + 1, counts)
    if len(report.differences) == before:
        _compare_json(scope, "manifest", ma, mb, (a.digest, b.digest), add)


def _flat(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _flat(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from _flat(item, f"{path}[{i}]")
    else:
        yield path, value


def _compare_json(scope: str, part: str, x: Any, y: Any, digests: tuple[str, str], add: Any) -> None:
    """What the fields compared above do not cover: any other field, else how the same JSON was written."""
    fx, fy = dict(_flat(x)), dict(_flat(y))
    found = False
    for key in [*fx, *(k for k in fy if k not in fx)]:
        if fx.get(key, ABSENT) != fy.get(key, ABSENT):
            add(Difference(scope, part, key, fx.get(key, ABSENT), fy.get(key, ABSENT)))
            found = True
    if not found:
        how = "key order" if list(fx) != list(fy) else "spacing or escaping"
        add(Difference(scope, part, f"bytes (the same JSON, written with another {how})", *digests))


def _digest(descriptor: Mapping[str, Any] | None) -> str:
    return ABSENT if descriptor is None else str(descriptor.get("digest"))


# -- configs ----------------------------------------------------------------------------------------

_CONFIG_ORDER = ("architecture", "os", "variant", "os.version", "created", "author", "config", "history", "rootfs")


def _env(values: Sequence[str] | None) -> dict[str, str]:
    return {name: value for name, _, value in (str(v).partition("=") for v in values or [])}


def _compare_configs(scope: str, x: Mapping[str, Any], y: Mapping[str, Any], add: Any) -> None:
    keys = [k for k in _CONFIG_ORDER if k in x or k in y] + sorted((set(x) | set(y)) - set(_CONFIG_ORDER))
    for key in keys:
        vx, vy = x.get(key, ABSENT), y.get(key, ABSENT)
        if vx == vy:
            continue
        if key == "config" and isinstance(vx, dict) and isinstance(vy, dict):
            _compare_run_config(scope, vx, vy, add)
        elif key == "history" and isinstance(vx, list) and isinstance(vy, list):
            if len(vx) != len(vy):
                add(Difference(scope, "config", "history length", len(vx), len(vy)))
            for i, (hx, hy) in enumerate(zip(vx, vy, strict=False)):
                if isinstance(hx, dict) and isinstance(hy, dict):
                    _compare_maps(scope, "config", f"history[{i}].", hx, hy, add)
        elif key == "rootfs":
            continue  # the layers below say which differ, and how
        else:
            add(Difference(scope, "config", key, vx, vy))


def _compare_run_config(scope: str, x: Mapping[str, Any], y: Mapping[str, Any], add: Any) -> None:
    for key in sorted(set(x) | set(y)):
        vx, vy = x.get(key, ABSENT), y.get(key, ABSENT)
        if vx == vy:
            continue
        if key == "Labels":
            _compare_maps(
                scope, "config", "label ", vx if isinstance(vx, dict) else {}, vy if isinstance(vy, dict) else {}, add
            )
        elif key == "Env" and isinstance(vx, list) and isinstance(vy, list) and _env(vx) != _env(vy):
            _compare_maps(scope, "config", "env ", _env(vx), _env(vy), add)
        elif key == "Env":
            add(Difference(scope, "config", "env order", vx, vy))
        else:
            add(Difference(scope, "config", f"config.{key}", vx, vy))


# -- layers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GzipHeader:
    mtime: int
    xfl: int
    os: int
    name: str | None
    comment: str | None
    extra: bytes | None

    def fields(self) -> dict[str, Any]:
        return {
            "gzip mtime": _time(self.mtime) if self.mtime else 0,
            "gzip name": self.name if self.name is not None else ABSENT,
            "gzip os": f"{self.os} ({_GZIP_OS.get(self.os, '?')})",
            "gzip level flag": {2: "2 (best)", 4: "4 (fastest)"}.get(self.xfl, str(self.xfl)),
            "gzip comment": self.comment if self.comment is not None else ABSENT,
            "gzip extra": self.extra.hex() if self.extra is not None else ABSENT,
        }


def _time(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    text = moment.isoformat(timespec="microseconds" if seconds % 1 else "seconds")
    return text.replace("+00:00", "Z")


def _read_exactly(f: IO[bytes], n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = f.read(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _read_cstring(f: IO[bytes], head: bytearray) -> str:
    out = bytearray()
    while (c := f.read(1)) and c != b"\0":
        out += c
    head += out + b"\0"
    return out.decode("latin-1")


def read_gzip_header(f: IO[bytes]) -> tuple[GzipHeader | None, bytes]:
    """The gzip header at the stream's start (None when it is no gzip), and the bytes read for it."""
    head = bytearray(_read_exactly(f, 10))
    if len(head) < 10 or head[:2] != _GZIP_MAGIC:
        return None, bytes(head)
    flags, mtime, xfl, os_ = head[3], struct.unpack("<I", head[4:8])[0], head[8], head[9]
    extra = name = comment = None
    if flags & 4:
        length = _read_exactly(f, 2)
        head += length
        extra = _read_exactly(f, struct.unpack("<H", length)[0]) if len(length) == 2 else b""
        head += extra
    if flags & 8:
        name = _read_cstring(f, head)
    if flags & 16:
        comment = _read_cstring(f, head)
    return GzipHeader(mtime, xfl, os_, name, comment, extra), bytes(head)


class _Prefixed(io.RawIOBase):
    """The bytes already read, then the rest of the stream."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass(frozen=True)
class FileEntry:
    """One tar member, as a layer records it."""

    kind: str
    mode: str
    uid: int
    gid: int
    owner: str  # uname:gname
    size: int
    content: str | None  # sha256 of a regular file's bytes
    mtime: str
    link: str | None
    device: str | None
    pax: tuple[tuple[str, str], ...]  # xattrs and other pax records tarfile does not map to a field

    def fields(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": self.kind,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
            "owner": self.owner,
            "size": self.size,
            "content": self.content or ABSENT,
            "mtime": self.mtime,
            "link": self.link or ABSENT,
            "device": self.device or ABSENT,
        }
        data.update(self.pax)
        return data


_KINDS = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "directory",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
    tarfile.CHRTYPE: "char device",
    tarfile.BLKTYPE: "block device",
    tarfile.FIFOTYPE: "fifo",
}


def _entry(member: tarfile.TarInfo, archive: tarfile.TarFile) -> FileEntry:
    content = None
    if member.isreg():
        hasher = hashlib.sha256()
        extracted = archive.extractfile(member)
        assert extracted is not None
        while chunk := extracted.read(CHUNK):
            hasher.update(chunk)
        content = f"sha256:{hasher.hexdigest()}"
    pax = tuple(sorted((f"pax {k}", str(v)) for k, v in member.pax_headers.items() if k not in _PAX_MAPPED))
    device = f"{member.devmajor},{member.devminor}" if member.ischr() or member.isblk() else None
    return FileEntry(
        kind=_KINDS.get(member.type, f"type {member.type!r}"),
        mode=f"{member.mode:04o}",
        uid=member.uid,
        gid=member.gid,
        owner=f"{member.uname}:{member.gname}",
        size=member.size,
        content=content,
        mtime=_time(member.mtime),
        link=member.linkname or None,
        device=device,
        pax=pax,
    )


@dataclass
class LayerListing:
    gzip: GzipHeader | None
    files: dict[str, FileEntry]
    order: list[str]


def _path(name: str) -> str:
    return posixpath.normpath("/" + name.removeprefix("./").lstrip("/"))


def read_layer(source: ImageSource, descriptor: Mapping[str, Any], files: bool = True) -> LayerListing:
    """A layer's gzip header and, with `files`, every member's metadata and content digest, in one pass."""
    digest = str(descriptor.get("digest", ""))
    media_type = str(descriptor.get("mediaType", ""))
    with source.blob(digest) as f:
        header, prefix = read_gzip_header(f)
        if not files:
            return LayerListing(header, {}, [])
        if "zstd" in media_type:
            raise DiffError(f"{source.label}: layer {digest[:19]} is zstd-compressed, which imgfront cannot read")
        raw: IO[bytes] = io.BufferedReader(_Prefixed(prefix, f), CHUNK)
        stream: Any = gzip.GzipFile(fileobj=raw, mode="rb") if header is not None else raw
        listing: dict[str, FileEntry] = {}
        order: list[str] = []
        try:
            with tarfile.open(fileobj=stream, mode="r|") as archive:
                for member in archive:
                    path = _path(member.name)
                    listing[path] = _entry(member, archive)
                    order.append(path)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DiffError(f"{source.label}: cannot read layer {digest[:19]}: {e}") from None
    return LayerListing(header, listing, order)


def _compare_layers(
    first: ImageSource,
    x: Mapping[str, Any],
    second: ImageSource,
    y: Mapping[str, Any],
    same_tar: bool,
    report: Report,
    scope: str,
    number: int,
    counts: tuple[int, int],
) -> None:
    la, lb = read_layer(first, x, files=not same_tar), read_layer(second, y, files=not same_tar)

    def add(part: str, name: str, u: Any, v: Any, path: str | None = None) -> None:
        report.add(Difference(scope, part, name, u, v, number, counts, path))

    if x.get("mediaType") != y.get("mediaType"):
        add("layer", "media type", x.get("mediaType", ABSENT), y.get("mediaType", ABSENT))
    header_part = "compression" if same_tar else "layer"
    if (la.gzip is None) != (lb.gzip is None):
        add(header_part, "gzip", "yes" if la.gzip else "no", "yes" if lb.gzip else "no")
    elif la.gzip is not None and lb.gzip is not None and la.gzip != lb.gzip:
        ga, gb = la.gzip.fields(), lb.gzip.fields()
        for name in ga:
            if ga[name] != gb[name]:
                add(header_part, name, ga[name], gb[name])
    if same_tar:
        if la.gzip == lb.gzip:
            add(
                "compression",
                "compressed bytes (the same tar and gzip header; another compressor or level)",
                _digest(x),
                _digest(y),
            )
        return
    before = len(report.differences)
    for path in sorted(set(la.files) | set(lb.files)):
        fa, fb = la.files.get(path), lb.files.get(path)
        if fa == fb:
            continue
        if fa is None or fb is None:
            present = fa or fb
            assert present is not None
            what = f"{present.kind}, {present.size} bytes" if present.kind == "file" else present.kind
            add("file", "presence", what if fa else ABSENT, what if fb else ABSENT, path)
            continue
        da, db = fa.fields(), fb.fields()
        for name in [*da, *(k for k in db if k not in da)]:
            if da.get(name, ABSENT) != db.get(name, ABSENT):
                add("file", name, da.get(name, ABSENT), db.get(name, ABSENT), path)
    if len(report.differences) == before:
        if la.order != lb.order:
            add("layer", "member order (the same files)", f"{len(la.order)} members", f"{len(lb.order)} members")
        else:
            add("layer", "tar bytes (the same files and order; header format or padding)", _digest(x), _digest(y))
