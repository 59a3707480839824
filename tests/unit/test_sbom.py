"""SPDX SBOMs without an engine: synthetic images with each kind of package database, across layers."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sqlite3
import struct
import subprocess
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from imgfront.errors import EngineError
from imgfront.images.blobs import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, BlobStore, Descriptor
from imgfront.images.normalise import OCI_LAYER_GZIP
from imgfront.images.packages import rpm_header
from imgfront.images.sbom import image_sbom, sbom_summary
from imgfront.platforms import Platform

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "spdx-schema-2.3.json").read_text())
CREATED = "2023-11-14T22:13:20Z"
TOOL = "imgfront-0.1.0"
ARM64 = Platform.parse("linux/arm64")


@dataclass(frozen=True)
class Member:
    """A tar member: a file (DATA), a folder (DATA None), a hard link (LINK) or a symlink (SYMLINK)."""

    name: str
    data: bytes | None = b""
    link: str | None = None
    symlink: str | None = None


def layer(members: Sequence[Member], compress: bool = False) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in members:
            info = tarfile.TarInfo(member.name)
            if member.link is not None:
                info.type, info.linkname = tarfile.LNKTYPE, member.link
            elif member.symlink is not None:
                info.type, info.linkname = tarfile.SYMTYPE, member.symlink
            elif member.data is None:
                info.type = tarfile.DIRTYPE
            else:
                info.size = len(member.data)
            archive.addfile(info, io.BytesIO(member.data) if info.isreg() else None)
    return gzip.compress(out.getvalue(), mtime=0) if compress else out.getvalue()


def image(store: BlobStore, *layers: bytes) -> Descriptor:
    config = json.dumps({"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": store.add_bytes(config), "size": len(config)},
        "layers": [
            {
                "mediaType": OCI_LAYER_GZIP if data[:2] == b"\x1f\x8b" else OCI_LAYER,
                "digest": store.add_bytes(data),
                "size": len(data),
            }
            for data in layers
        ],
    }
    body = json.dumps(manifest).encode()
    return Descriptor(OCI_MANIFEST, store.add_bytes(body), len(body), ARM64)


def rpm_blob(tags: dict[int, str | int]) -> bytes:
    """An rpmdb header blob: index length, data length, 16-byte index entries, then the data."""
    index, data = b"", b""
    for tag, value in tags.items():
        if isinstance(value, int):
            data += b"\0" * (-len(data) % 4)  # rpm aligns INT32 values
            index += struct.pack(">iIiI", tag, 4, len(data), 1)
            data += struct.pack(">i", value)
        else:
            index += struct.pack(">iIiI", tag, 6, len(data), 1)
            data += value.encode() + b"\0"
    return struct.pack(">II", len(tags), len(data)) + index + data


def rpmdb(tmp_path: Path, headers: Sequence[dict[int, str | int]]) -> bytes:
    path = tmp_path / "rpmdb.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    connection.executemany("INSERT INTO Packages (blob) VALUES (?)", [(rpm_blob(tags),) for tags in headers])
    connection.commit()
    connection.close()
    return path.read_bytes()


def sbom(store: BlobStore, manifest: Descriptor, **kwargs: Any) -> dict[str, Any]:
    """The document, checked against the SPDX 2.3 JSON schema and, read back, by spdx-tools' validator."""
    from spdx_tools.spdx.parser.json.json_parser import parse_from_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    options = {"name": "localhost/app:1 linux/arm64", "created": CREATED, "tool": TOOL, **kwargs}
    document = image_sbom(store, manifest, **options)
    data: dict[str, Any] = json.loads(document)
    jsonschema.Draft7Validator(SCHEMA).validate(data)
    written = store.root / "sbom.spdx.json"
    written.write_bytes(document)
    assert validate_full_spdx_document(parse_from_file(str(written))) == []
    return data


def packages(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {package["name"]: package for package in data["packages"]}


def purl(package: dict[str, Any]) -> str:
    refs = [ref["referenceLocator"] for ref in package["externalRefs"] if ref["referenceType"] == "purl"]
    assert len(refs) == 1
    return str(refs[0])


def files(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        file["fileName"]: {checksum["algorithm"]: checksum["checksumValue"] for checksum in file["checksums"]}
        for file in data.get("files", [])
    }


def relations(data: dict[str, Any], kind: str) -> set[tuple[str, str]]:
    return {
        (rel["spdxElementId"], rel["relatedSpdxElement"])
        for rel in data["relationships"]
        if rel["relationshipType"] == kind
    }


DPKG_STATUS = b"""Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Description: GNU C Library: Shared libraries
 Contains the standard libraries.

Package: oldtool
Status: deinstall ok config-files
Architecture: amd64
Version: 1:0.5-2
Maintainer: Someone <someone@example.org>
"""
TZDATA = b"""Package: tzdata
Version: 2024a-0+deb12u1
Architecture: all
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
"""
METADATA = b"""Metadata-Version: 2.1
Name: Foo_Bar
Version: 1.2.0
Author-email: Jane Doe <jane@example.org>
License-Expression: MIT OR Apache-2.0
Home-page: https://example.org/foo

A long description that the SBOM does not need.
"""
LEGACY_PKG_INFO = b"Metadata-Version: 1.0\nName: legacy\nVersion: 0.9\nAuthor: Bob\nLicense: BSD License\n"
EGG_PKG_INFO = b"Metadata-Version: 1.1\nName: eggy\nVersion: 3.0\nLicense: GPL-2.0-or-later\n"
HELLO = b"\x7fELF hello"


@pytest.fixture
def debian(tmp_path: Path) -> tuple[BlobStore, Descriptor]:
    store = BlobStore(tmp_path / "store")
    base = layer(
        [
            Member("etc", None),
            Member("etc/os-release", b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'),
            Member("etc/removed.conf", b"gone\n"),
            Member("var/lib/dpkg/status", DPKG_STATUS),
            Member("usr/bin/hello", HELLO),
            Member("usr/bin/hi", link="usr/bin/hello"),
            Member("usr/bin/greet", symlink="hello"),
            Member("opt/cache", None),
            Member("opt/cache/a.txt", b"a"),
            Member("opt/cache/sub/b.txt", b"b"),
            Member("usr/lib/python3/dist-packages/Foo_Bar-1.2.0.dist-info/METADATA", METADATA),
            Member("usr/lib/python3/dist-packages/legacy-0.9.egg-info", LEGACY_PKG_INFO),
            Member("usr/lib/python3/dist-packages/eggy-3.0.egg-info/PKG-INFO", EGG_PKG_INFO),
            Member("srv/dropped/inside.txt", b"x"),
        ],
        compress=True,
    )
    top = layer(
        [
            Member("opt/cache/new.txt", b"new"),  # before the opaque marker: this layer's own files stay
            Member("opt/cache/.wh..wh..opq"),
            Member("etc/.wh.removed.conf"),
            Member("srv/.wh.dropped"),
            Member("var/lib/dpkg/status.d/tzdata", TZDATA),
            Member("var/lib/dpkg/status.d/tzdata.md5sums", b"0123  usr/share/zoneinfo/UTC\n"),
        ]
    )
    return store, image(store, base, top)


def test_the_final_tree_lists_each_regular_file_with_its_checksums(debian: tuple[BlobStore, Descriptor]) -> None:
    data = sbom(*debian)
    listed = files(data)
    assert listed["./usr/bin/hello"] == {
        "SHA1": hashlib.sha1(HELLO).hexdigest(),
        "SHA256": hashlib.sha256(HELLO).hexdigest(),
    }
    assert listed["./opt/cache/new.txt"]["SHA256"] == hashlib.sha256(b"new").hexdigest()
    assert "./var/lib/dpkg/status.d/tzdata.md5sums" in listed


def test_whiteouts_and_opaque_folders_remove_lower_files(debian: tuple[BlobStore, Descriptor]) -> None:
    listed = files(sbom(*debian))
    assert "./etc/removed.conf" not in listed
    assert "./opt/cache/a.txt" not in listed
    assert "./opt/cache/sub/b.txt" not in listed
    assert "./srv/dropped/inside.txt" not in listed
    assert not any(".wh." in name for name in listed)


def test_links_are_not_listed_as_regular_files(debian: tuple[BlobStore, Descriptor]) -> None:
    listed = files(sbom(*debian))
    assert "./usr/bin/hi" not in listed
    assert "./usr/bin/greet" not in listed


def test_the_image_contains_every_file_and_package(debian: tuple[BlobStore, Descriptor]) -> None:
    data = sbom(*debian)
    assert data["spdxVersion"] == "SPDX-2.3"
    assert relations(data, "DESCRIBES") == {("SPDXRef-DOCUMENT", "SPDXRef-image")}
    image_package = packages(data)["localhost/app:1 linux/arm64"]
    assert image_package["SPDXID"] == "SPDXRef-image"
    assert image_package["primaryPackagePurpose"] == "CONTAINER"
    contained = {target for _, target in relations(data, "CONTAINS")}
    others = {package["SPDXID"] for package in data["packages"]} - {"SPDXRef-image"}
    assert contained == others | {file["SPDXID"] for file in data["files"]}
    assert data["creationInfo"] == {"created": CREATED, "creators": [f"Tool: {TOOL}"]}


def test_dpkg_lists_installed_packages_only_with_the_distros_purl(debian: tuple[BlobStore, Descriptor]) -> None:
    found = packages(sbom(*debian))
    libc = found["libc6"]
    assert libc["versionInfo"] == "2.36-9+deb12u4"
    assert purl(libc) == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"
    assert libc["supplier"] == "Person: GNU Libc Maintainers (debian-glibc@lists.debian.org)"
    assert libc["sourceInfo"] == "built from source package glibc"
    assert libc["licenseDeclared"] == "NOASSERTION"
    assert libc["downloadLocation"] == "NOASSERTION"
    assert libc["filesAnalyzed"] is False
    assert "oldtool" not in found
    assert purl(found["tzdata"]) == "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all"


def test_python_distributions_from_dist_info_and_egg_info(debian: tuple[BlobStore, Descriptor]) -> None:
    found = packages(sbom(*debian))
    foo = found["Foo_Bar"]
    assert (foo["versionInfo"], purl(foo)) == ("1.2.0", "pkg:pypi/foo-bar@1.2.0")
    assert foo["licenseDeclared"] == "MIT OR Apache-2.0"
    assert foo["originator"] == "Person: Jane Doe (jane@example.org)"
    assert foo["homepage"] == "https://example.org/foo"
    legacy = found["legacy"]
    assert (legacy["versionInfo"], purl(legacy)) == ("0.9", "pkg:pypi/legacy@0.9")
    assert legacy["licenseDeclared"] == "NOASSERTION"
    assert "BSD License" in legacy["licenseComments"]
    assert found["eggy"]["licenseDeclared"] == "GPL-2.0-or-later"


def test_the_same_inputs_give_the_same_bytes(debian: tuple[BlobStore, Descriptor]) -> None:
    store, manifest = debian
    options: dict[str, Any] = {"name": "localhost/app:1 linux/arm64", "created": CREATED, "tool": TOOL}
    first = image_sbom(store, manifest, **options)
    assert image_sbom(store, manifest, **options) == first
    other = image_sbom(store, manifest, **{**options, "name": "localhost/app:2 linux/arm64"})
    assert json.loads(other)["documentNamespace"] != json.loads(first)["documentNamespace"]


def test_alpine_apk_database(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    installed = (
        b"C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:aarch64\nL:MIT\no:musl\nm:Timo Teras <timo.teras@iki.fi>\n"
        b"U:https://musl.libc.org/\n\n"
        b"C:Q1def=\nP:busybox\nV:1.36.1-r5\nA:aarch64\nL:GPL-2.0-only\no:busybox\n\n"
    )
    manifest = image(
        store,
        layer([Member("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.0\n"), Member("lib/apk/db/installed", installed)]),
    )
    data = sbom(store, manifest)
    found = packages(data)
    musl = found["musl"]
    assert (musl["versionInfo"], purl(musl)) == ("1.2.4-r2", "pkg:apk/alpine/musl@1.2.4-r2?arch=aarch64")
    assert musl["licenseDeclared"] == "MIT"
    assert musl["supplier"] == "Person: Timo Teras (timo.teras@iki.fi)"
    assert found["busybox"]["licenseDeclared"] == "GPL-2.0-only"
    assert sbom_summary(json.dumps(data).encode()) == [
        ("image", "localhost/app:1 linux/arm64", manifest.digest),
        ("apk", "busybox", "1.36.1-r5"),
        ("apk", "musl", "1.2.4-r2"),
    ]


def test_an_rpm_header_blob_gives_its_tags() -> None:
    tags = rpm_header(rpm_blob({1000: "bash", 1003: 2, 1001: "5.2.26", 1002: "3.fc40", 1022: "aarch64"}))
    assert tags == {1000: "bash", 1003: 2, 1001: "5.2.26", 1002: "3.fc40", 1022: "aarch64"}


def test_rpm_sqlite_database(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    database = rpmdb(
        tmp_path,
        [
            {1000: "bash", 1001: "5.2.26", 1002: "3.fc40", 1022: "aarch64", 1014: "GPL-3.0-or-later", 1011: "Fedora"},
            {1000: "shadow-utils", 1003: 2, 1001: "4.15.1", 1002: "4.fc40", 1022: "aarch64", 1014: "BSD-3-Clause"},
            {1000: "gpg-pubkey", 1001: "a15b79cc", 1002: "63d04c2c"},
        ],
    )
    manifest = image(
        store,
        layer(
            [
                Member("usr/lib/os-release", b'NAME="Fedora Linux"\nID=fedora\n'),
                Member("etc/os-release", symlink="../usr/lib/os-release"),
                Member("usr/lib/sysimage/rpm/rpmdb.sqlite", database),
            ],
            compress=True,
        ),
    )
    found = packages(sbom(store, manifest))
    bash = found["bash"]
    assert (bash["versionInfo"], purl(bash)) == ("5.2.26-3.fc40", "pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=aarch64")
    assert bash["licenseDeclared"] == "GPL-3.0-or-later"
    assert bash["supplier"] == "Organization: Fedora"
    shadow = found["shadow-utils"]
    assert shadow["versionInfo"] == "2:4.15.1-4.fc40"
    assert purl(shadow) == "pkg:rpm/fedora/shadow-utils@4.15.1-4.fc40?arch=aarch64&epoch=2"
    assert "gpg-pubkey" not in found


def test_a_berkeley_db_rpm_database_is_reported_as_not_read(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    bdb = b"\0\0\0\0\x01\0\0\0\0\0\0\0\x61\x15\x06\0" + b"\0" * 48  # a hash database's metadata page
    manifest = image(store, layer([Member("var/lib/rpm/Packages", bdb)]))
    data = sbom(store, manifest)
    assert [package["SPDXID"] for package in data["packages"]] == ["SPDXRef-image"]
    [annotation] = data["annotations"]
    assert annotation["annotationType"] == "OTHER"
    assert annotation["annotator"] == f"Tool: {TOOL}"
    assert "var/lib/rpm/Packages" in annotation["comment"]
    assert "rpm Berkeley DB" in annotation["comment"]
    assert "var/lib/rpm/Packages" in data["comment"]


def test_build_stage_packages_are_build_dependencies(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    final = image(store, layer([Member("hello", HELLO)]))
    builder_status = (
        b"Package: gcc-12\nStatus: install ok installed\nArchitecture: arm64\nVersion: 12.2.0-14\n\n"
        b"Package: libc6-dev\nStatus: install ok installed\nArchitecture: arm64\nVersion: 2.36-9+deb12u4\n"
    )
    stage_store = BlobStore(tmp_path / "stage")
    builder = image(stage_store, layer([Member("var/lib/dpkg/status", builder_status), Member("usr/bin/gcc", b"gcc")]))
    data = sbom(store, final, stages=[("build", stage_store, builder)])
    found = packages(data)
    assert purl(found["gcc-12"]) == "pkg:deb/debian/gcc-12@12.2.0-14?arch=arm64"
    assert relations(data, "BUILD_DEPENDENCY_OF") == {
        (found["gcc-12"]["SPDXID"], "SPDXRef-image"),
        (found["libc6-dev"]["SPDXID"], "SPDXRef-image"),
    }
    assert found["gcc-12"]["comment"] == "in build stage build"
    assert set(files(data)) == {"./hello"}  # a stage's files are not the image's
    assert ("build:deb", "gcc-12", "12.2.0-14") in sbom_summary(json.dumps(data).encode())


def test_an_empty_image_is_a_valid_document(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    data = sbom(store, image(store))
    assert [package["SPDXID"] for package in data["packages"]] == ["SPDXRef-image"]


def test_an_unreadable_rpm_sqlite_is_reported_not_failed(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    manifest = image(store, layer([Member("var/lib/rpm/rpmdb.sqlite", b"not a database")]))
    data = sbom(store, manifest)
    [annotation] = data["annotations"]
    assert "var/lib/rpm/rpmdb.sqlite" in annotation["comment"]
    assert "could not be read" in annotation["comment"]


def test_a_damaged_layer_is_an_engine_error_naming_it(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    whole = layer([Member("usr/bin/hello", HELLO * 1000)], compress=True)
    manifest = image(store, whole[: len(whole) // 2])
    with pytest.raises(EngineError, match="is not valid gzip"):
        image_sbom(store, manifest, name="x", created=CREATED, tool=TOOL)


def test_importing_the_module_loads_no_sbom_library() -> None:
    probe = (
        "import sys, imgfront.images.sbom\n"
        "heavy = ('spdx_tools', 'debian', 'packageurl', 'license_expression')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
