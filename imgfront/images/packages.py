"""The packages an image's package databases list: dpkg, apk, rpm (sqlite) and Python distributions.

Each reader takes one database file's content, kept from the image's final file tree (`filetree`); a database
found but of a kind no reader takes (rpm's Berkeley DB and ndb, pacman's) is reported as `Unread`.
"""

from __future__ import annotations

import email.parser
import email.utils
import posixpath
import shlex
import sqlite3
import struct
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from imgfront.images.filetree import TreeFile

DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d/"  # distroless: one file per package, no Status field
APK_INSTALLED = "lib/apk/db/installed"
RPM_SQLITE = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
PYTHON_METADATA = (".dist-info/METADATA", ".egg-info/PKG-INFO", ".egg-info")
# Databases that cannot be read without their own tool, by path (a trailing / for a folder of them).
UNREAD = {
    "var/lib/rpm/Packages": "rpm Berkeley DB",
    "usr/lib/sysimage/rpm/Packages": "rpm Berkeley DB",
    "var/lib/rpm/Packages.db": "rpm ndb",
    "usr/lib/sysimage/rpm/Packages.db": "rpm ndb",
    "var/lib/pacman/local/": "pacman",
    "var/db/pkg/": "portage",
}

# RPM header tags and value types (rpm's lib/rpmtag.h).
RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE, RPMTAG_EPOCH = 1000, 1001, 1002, 1003
RPMTAG_VENDOR, RPMTAG_LICENSE, RPMTAG_URL, RPMTAG_ARCH, RPMTAG_SOURCERPM = 1011, 1014, 1020, 1022, 1044
RPM_INT32, RPM_STRING, RPM_STRING_ARRAY, RPM_I18NSTRING = 4, 6, 8, 9


@dataclass(frozen=True)
class Party:
    """A package's supplier or originator."""

    name: str
    email: str | None = None
    organization: bool = False


@dataclass(frozen=True)
class Package:
    type: str  # the purl type: deb, apk, rpm, pypi
    name: str
    version: str
    purl: str
    found_in: str  # the database file that lists it
    supplier: Party | None = None
    originator: Party | None = None
    license: str | None = None  # as the database declares it, which may not be an SPDX expression
    source: str | None = None  # the source package it was built from
    homepage: str | None = None


@dataclass(frozen=True)
class Unread:
    """A package database that was found but not read, so its packages are missing from the list."""

    kind: str
    path: str
    why: str


@dataclass(frozen=True)
class _Context:
    os_id: str | None
    kept: Mapping[str, bytes]


def _purl(type_: str, namespace: str | None, name: str, version: str, **qualifiers: str | None) -> str:
    from packageurl import PackageURL

    present = {key: value for key, value in qualifiers.items() if value}
    return str(PackageURL(type=type_, namespace=namespace, name=name, version=version, qualifiers=present))


def _party(value: str | None, organization: bool = False) -> Party | None:
    """A `Name <email>` field, a bare address, or a plain name (which `parseaddr` would mangle)."""
    value = (value or "").strip()
    if not value:
        return None
    if value.endswith(">") and "<" in value:
        name, address = email.utils.parseaddr(value)
        return Party(name or address or value, address or None, organization)
    if "@" in value and " " not in value:
        return Party(value, value, organization)
    return Party(value, None, organization)


def _dpkg(path: str, data: bytes, context: _Context) -> list[Package]:
    from debian.deb822 import Deb822

    packages = []
    for paragraph in Deb822.iter_paragraphs(data.decode("utf-8", "replace").splitlines(True), use_apt_pkg=False):
        name, version = paragraph.get("Package"), paragraph.get("Version")
        status = paragraph.get("Status", "install ok installed").split()
        if not name or not version or status[-1:] != ["installed"]:  # config-files, half-installed, not-installed
            continue
        arch = paragraph.get("Architecture")
        source = paragraph.get("Source", "").split(" ")[0] or None
        purl = _purl("deb", context.os_id or "debian", name, version, arch=arch)
        supplier = _party(paragraph.get("Maintainer"))
        packages.append(
            Package("deb", name, version, purl, path, supplier, source=source, homepage=paragraph.get("Homepage"))
        )
    return packages


def _apk(path: str, data: bytes, context: _Context) -> list[Package]:
    packages = []
    for block in data.decode("utf-8", "replace").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep and len(key) == 1:
                fields.setdefault(key, value)
        name, version = fields.get("P"), fields.get("V")
        if not name or not version:
            continue
        purl = _purl("apk", context.os_id or "alpine", name, version, arch=fields.get("A"))
        packages.append(
            Package(
                "apk",
                name,
                version,
                purl,
                path,
                _party(fields.get("m")),
                license=fields.get("L"),
                source=fields.get("o"),
                homepage=fields.get("U"),
            )
        )
    return packages


def rpm_header(blob: bytes) -> dict[int, str | int]:
    """The tags of an rpmdb header blob that a package's entry needs: strings (the first of arrays) and ints.

    The blob is rpm's header without its magic: index length and data length (big-endian 32-bit), that many
    16-byte index entries (tag, type, offset into the data, count), then the data.
    """
    wanted = {
        RPMTAG_NAME,
        RPMTAG_VERSION,
        RPMTAG_RELEASE,
        RPMTAG_EPOCH,
        RPMTAG_VENDOR,
        RPMTAG_LICENSE,
        RPMTAG_URL,
        RPMTAG_ARCH,
        RPMTAG_SOURCERPM,
    }
    entries, length = struct.unpack_from(">II", blob, 0)
    start = 8 + 16 * entries
    if len(blob) < start + length:
        raise ValueError(f"the header is {len(blob)} bytes, not the {start + length} its index says")
    data = blob[start : start + length]
    tags: dict[int, str | int] = {}
    for position in range(entries):
        tag, kind, offset, count = struct.unpack_from(">iIiI", blob, 8 + 16 * position)
        if tag not in wanted or not 0 <= offset < length or count < 1:
            continue
        if kind in (RPM_STRING, RPM_STRING_ARRAY, RPM_I18NSTRING):
            tags[tag] = data[offset:].split(b"\0", 1)[0].decode("utf-8", "replace")
        elif kind == RPM_INT32 and offset + 4 <= length:
            tags[tag] = struct.unpack_from(">i", data, offset)[0]
    return tags


def _rpm(path: str, data: bytes, context: _Context) -> list[Package]:
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder, "rpmdb.sqlite")
        database.write_bytes(data)
        if (wal := context.kept.get(path + "-wal")) is not None:
            Path(folder, "rpmdb.sqlite-wal").write_bytes(wal)
        connection = sqlite3.connect(database)
        try:
            blobs = [row[0] for row in connection.execute("SELECT blob FROM Packages ORDER BY hnum")]
        finally:
            connection.close()
    packages = []
    for blob in blobs:
        tags = rpm_header(bytes(blob))
        name, version, release = (str(tags.get(tag, "")) for tag in (RPMTAG_NAME, RPMTAG_VERSION, RPMTAG_RELEASE))
        if not name or not version or name == "gpg-pubkey":  # an imported signing key, no software
            continue
        full = f"{version}-{release}" if release else version
        epoch = tags.get(RPMTAG_EPOCH)
        arch = str(tags.get(RPMTAG_ARCH, "")) or None
        purl = _purl("rpm", context.os_id, name, full, arch=arch, epoch=None if epoch is None else str(epoch))
        packages.append(
            Package(
                "rpm",
                name,
                full if epoch is None else f"{epoch}:{full}",
                purl,
                path,
                _party(str(tags.get(RPMTAG_VENDOR, "")), organization=True),
                license=str(tags.get(RPMTAG_LICENSE, "")) or None,
                source=str(tags.get(RPMTAG_SOURCERPM, "")) or None,
                homepage=str(tags.get(RPMTAG_URL, "")) or None,
            )
        )
    return packages


def _first_author(author: str | None, author_email: str | None) -> Party | None:
    """The first of `Author-email: A <a@x>, B <b@x>`, named by `Author` when the address alone is given."""
    if author_email:
        addresses = email.utils.getaddresses([str(author_email)])
        if addresses and addresses[0][1]:
            name, address = addresses[0]
            return Party(name or (str(author).strip() if author else "") or address, address)
    return _party(str(author) if author else None)


def _python(path: str, data: bytes, context: _Context) -> list[Package]:
    headers = email.parser.BytesHeaderParser().parsebytes(data)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return []
    author = _first_author(headers.get("Author"), headers.get("Author-email"))
    license_ = headers.get("License-Expression") or headers.get("License")
    purl = _purl("pypi", None, str(name), str(version))
    return [
        Package(
            "pypi",
            str(name),
            str(version),
            purl,
            path,
            originator=author,
            license=str(license_).strip() if license_ else None,
            homepage=headers.get("Home-page"),
        )
    ]


def _is_python_metadata(path: str) -> bool:
    return path.endswith(PYTHON_METADATA)


_Reader = Callable[[str, bytes, _Context], list[Package]]
# Which files each reader takes, by path.
READERS: tuple[tuple[Callable[[str], bool], _Reader], ...] = (
    (lambda path: path == DPKG_STATUS, _dpkg),
    (lambda path: path.startswith(DPKG_STATUS_D) and not path.endswith(".md5sums"), _dpkg),
    (lambda path: path == APK_INSTALLED, _apk),
    (lambda path: path in RPM_SQLITE, _rpm),
    (_is_python_metadata, _python),
)


def wanted(path: str) -> bool:
    """Whether `find_packages` needs the content of the file at PATH."""
    if path in OS_RELEASE or path.removesuffix("-wal") in RPM_SQLITE:
        return True
    return any(matches(path) for matches, _ in READERS)


def _os_id(kept: Mapping[str, bytes]) -> str | None:
    for path in OS_RELEASE:
        if path in kept:
            for line in kept[path].decode("utf-8", "replace").splitlines():
                key, sep, value = line.partition("=")
                if sep and key.strip() == "ID":
                    words = shlex.split(value, comments=True)
                    return words[0].lower() if words else None
    return None


def _unread(path: str) -> tuple[str, str] | None:
    """The kind and path of the database PATH is or is in, if no reader takes it."""
    if path in UNREAD:
        return UNREAD[path], path
    for folder, kind in UNREAD.items():
        if folder.endswith("/") and path.startswith(folder):
            return kind, folder.rstrip("/")
    return None


def find_packages(files: Sequence[TreeFile]) -> tuple[list[Package], list[Unread]]:
    """The packages the databases among FILES list (their content kept where `wanted` said so), and the unread."""
    kept = {file.path: file.data for file in files if file.data is not None}
    context = _Context(_os_id(kept), kept)
    packages: list[Package] = []
    unread: dict[tuple[str, str], Unread] = {}
    for path, data in kept.items():
        for matches, reader in READERS:
            if not matches(path):
                continue
            try:
                packages.extend(reader(path, data, context))
            except (ValueError, struct.error, sqlite3.Error, UnicodeError) as e:
                kind = posixpath.basename(path)
                unread[(kind, path)] = Unread(kind, path, f"it could not be read: {e}")
    for file in files:
        if (found := _unread(file.path)) is not None and found not in unread:
            unread[found] = Unread(*found, "imgfront reads no database of this kind")
    return packages, sorted(unread.values(), key=lambda entry: entry.path)
