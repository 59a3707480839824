"""An SPDX 2.3 JSON SBOM of one image: its final regular files with checksums, and the packages it holds.

Built with the SPDX project's own model and writer (spdx-tools), which are imported only when a document is
made. The document is a function of its inputs: SPDXIDs are hashes of what they name, lists are sorted, and
the namespace is a hash of the manifest digest and the name, so a reproducible build gets a reproducible SBOM.
Packages of build stages (as BuildKit's BUILDKIT_SBOM_SCAN_STAGE lists them) are BUILD_DEPENDENCY_OF the image.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from imgfront.images.blobs import BlobStore, Descriptor
from imgfront.images.filetree import TreeFile, image_files
from imgfront.images.packages import Package, Party, find_packages, wanted

if TYPE_CHECKING:
    from spdx_tools.spdx.jsonschema.document_converter import DocumentConverter
    from spdx_tools.spdx.model import Actor, Document, SpdxNoAssertion
    from spdx_tools.spdx.model import Package as SpdxPackage

IMAGE_ID = "SPDXRef-image"
DOCUMENT_ID = "SPDXRef-DOCUMENT"
NAMESPACE_BASE = "https://spdx.org/spdxdocs/imgfront"
# A declared license longer than this is a license's text, not an expression.
LICENSE_EXPRESSION_MAX = 200


def _id(kind: str, *parts: str) -> str:
    """A stable SPDXID for what PARTS name: the same element gets the same id in every document."""
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
    return f"SPDXRef-{kind}-{digest}"


def _actor(party: Party | None) -> Actor | SpdxNoAssertion:
    from spdx_tools.spdx.model import Actor, ActorType, SpdxNoAssertion

    if party is None:
        return SpdxNoAssertion()
    kind = ActorType.ORGANIZATION if party.organization else ActorType.PERSON
    return Actor(kind, party.name, party.email)


def _license(declared: str | None) -> tuple[Any, str | None]:
    """The declared license as an SPDX expression, or NOASSERTION and a comment that quotes what was declared."""
    from spdx_tools.common.spdx_licensing import spdx_licensing
    from spdx_tools.spdx.model import SpdxNoAssertion

    if not declared:
        return SpdxNoAssertion(), None
    if len(declared) <= LICENSE_EXPRESSION_MAX and not spdx_licensing.validate(declared).errors:
        return spdx_licensing.parse(declared), None
    first = declared.splitlines()[0][:LICENSE_EXPRESSION_MAX]
    return SpdxNoAssertion(), f"declared as {first!r}, which is not an SPDX license expression"


def _homepage(url: str | None) -> str | None:
    from spdx_tools.spdx.validation.uri_validators import validate_url

    return url if url and not validate_url(url) else None


def _package(spdx_id: str, package: Package, comment: str | None) -> SpdxPackage:
    from spdx_tools.spdx.model import ExternalPackageRef, ExternalPackageRefCategory, SpdxNoAssertion
    from spdx_tools.spdx.model import Package as SpdxPackage

    license_declared, license_comment = _license(package.license)
    return SpdxPackage(
        spdx_id,
        package.name,
        SpdxNoAssertion(),
        version=package.version,
        supplier=_actor(package.supplier),
        originator=None if package.originator is None else _actor(package.originator),
        files_analyzed=False,
        homepage=_homepage(package.homepage),
        source_info=None if package.source is None else f"built from source package {package.source}",
        license_concluded=SpdxNoAssertion(),
        license_declared=license_declared,
        license_comment=license_comment,
        copyright_text=SpdxNoAssertion(),
        comment=comment,
        external_references=[ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", package.purl)],
    )


def _order(package: Package) -> tuple[str, ...]:
    return (package.type, package.name, package.version, package.purl, package.found_in)


def _verification_code(files: Sequence[TreeFile]) -> str:
    """SPDX's package verification code: the SHA1 of the files' SHA1s, sorted and joined."""
    joined = "".join(sorted(file.sha1 for file in files))
    return hashlib.sha1(joined.encode(), usedforsecurity=False).hexdigest()


def _namespace(manifest: Descriptor, name: str, stages: Sequence[tuple[str, BlobStore, Descriptor]]) -> str:
    key = [manifest.digest, name, *([stage, descriptor.digest] for stage, _, descriptor in stages)]
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", name).strip("-") or "image"
    return f"{NAMESPACE_BASE}/{slug}-{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]}"


def _created(created: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(created)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).replace(microsecond=0)


def build_document(
    store: BlobStore,
    manifest: Descriptor,
    *,
    name: str,
    created: str,
    tool: str,
    stages: Sequence[tuple[str, BlobStore, Descriptor]] = (),
) -> Document:
    """The SBOM as spdx-tools' model, for `image_sbom` to write and tests to validate."""
    from spdx_tools.spdx.model import (
        Actor,
        ActorType,
        Annotation,
        AnnotationType,
        Checksum,
        ChecksumAlgorithm,
        CreationInfo,
        Document,
        File,
        PackagePurpose,
        PackageVerificationCode,
        Relationship,
        RelationshipType,
        SpdxNoAssertion,
    )
    from spdx_tools.spdx.model import Package as SpdxPackage

    moment = _created(created)
    files = image_files(store, manifest, wanted)
    found, unread = find_packages(files)
    image = SpdxPackage(
        IMAGE_ID,
        name,
        SpdxNoAssertion(),
        version=manifest.digest,
        supplier=SpdxNoAssertion(),
        files_analyzed=True,
        verification_code=PackageVerificationCode(_verification_code(files)),
        checksums=[Checksum(ChecksumAlgorithm.SHA256, manifest.digest.partition(":")[2])],
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        primary_package_purpose=PackagePurpose.CONTAINER,
        comment=None if manifest.platform is None else f"platform {manifest.platform}",
    )
    packages = [image]
    relationships = [Relationship(DOCUMENT_ID, RelationshipType.DESCRIBES, IMAGE_ID)]
    seen: set[str] = {IMAGE_ID}
    for package in sorted(found, key=_order):
        spdx_id = _id(f"Package-{package.type}", package.found_in, package.purl)
        if spdx_id not in seen:
            seen.add(spdx_id)
            packages.append(_package(spdx_id, package, None))
            relationships.append(Relationship(IMAGE_ID, RelationshipType.CONTAINS, spdx_id))
    spdx_files = []
    for file in files:
        spdx_id = _id("File", file.path)
        checksums = [Checksum(ChecksumAlgorithm.SHA1, file.sha1), Checksum(ChecksumAlgorithm.SHA256, file.sha256)]
        spdx_files.append(File(f"./{file.path}", spdx_id, checksums))
        relationships.append(Relationship(IMAGE_ID, RelationshipType.CONTAINS, spdx_id))
    unread_notes = [(f"the image's {entry.path}", entry) for entry in unread]
    for stage, stage_store, stage_manifest in stages:
        stage_found, stage_unread = find_packages(image_files(stage_store, stage_manifest, wanted, checksums=False))
        unread_notes.extend((f"build stage {stage}'s {entry.path}", entry) for entry in stage_unread)
        for package in sorted(stage_found, key=_order):
            spdx_id = _id(f"Package-{package.type}", stage, package.found_in, package.purl)
            if spdx_id not in seen:
                seen.add(spdx_id)
                packages.append(_package(spdx_id, package, f"in build stage {stage}"))
                relationships.append(Relationship(spdx_id, RelationshipType.BUILD_DEPENDENCY_OF, IMAGE_ID))
    notes = [f"{where}: a {entry.kind} package database, not read ({entry.why})" for where, entry in unread_notes]
    annotator = Actor(ActorType.TOOL, tool)
    creation = CreationInfo(
        "SPDX-2.3",
        DOCUMENT_ID,
        name,
        _namespace(manifest, name, stages),
        [annotator],
        moment,
        document_comment=" ".join(f"{note}: its packages are not listed." for note in notes) or None,
    )
    annotations = [Annotation(DOCUMENT_ID, AnnotationType.OTHER, annotator, moment, note) for note in notes]
    return Document(creation, packages, spdx_files, annotations=annotations, relationships=relationships)


def _converter() -> DocumentConverter:
    """spdx-tools' converter, but for external references' category, which spdx-tools 0.8 writes as its enum's
    name (PACKAGE_MANAGER) where the SPDX 2.3 spec and its JSON schema spell it PACKAGE-MANAGER.
    """
    from spdx_tools.spdx.jsonschema.document_converter import DocumentConverter
    from spdx_tools.spdx.jsonschema.external_package_ref_converter import ExternalPackageRefConverter
    from spdx_tools.spdx.jsonschema.external_package_ref_properties import ExternalPackageRefProperty

    class SpecCategory(ExternalPackageRefConverter):
        def _get_property_value(self, external_ref: Any, external_ref_property: Any, document: Any = None) -> Any:
            value = super()._get_property_value(external_ref, external_ref_property, document)
            if external_ref_property == ExternalPackageRefProperty.REFERENCE_CATEGORY:
                return value.replace("_", "-")
            return value

    converter = DocumentConverter()
    converter.package_converter.external_package_ref_converter = SpecCategory()
    return converter


def image_sbom(
    store: BlobStore,
    manifest: Descriptor,
    *,
    name: str,
    created: str,
    tool: str,
    stages: Sequence[tuple[str, BlobStore, Descriptor]] = (),
) -> bytes:
    """The SPDX 2.3 JSON document of MANIFEST's image in STORE, the same bytes for the same inputs.

    NAME names the image (and the document), CREATED is the creation time (ISO 8601), TOOL the creator
    (`imgfront-0.1.0`); STAGES are other build stages' images, (stage name, store, manifest), whose packages
    are listed as build dependencies.
    """
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    document = build_document(store, manifest, name=name, created=created, tool=tool, stages=stages)
    out = io.StringIO()
    # Built valid by construction, and its tests run the full validator; that check is quadratic in the
    # relationships, which an image with many files has tens of thousands of.
    write_document_to_stream(document, out, validate=False, converter=_converter(), drop_duplicates=False)
    return out.getvalue().encode() + b"\n"


def sbom_summary(document: bytes) -> list[tuple[str, str, str]]:
    """(kind, name, version) of each package a document lists, the image's first: kind is the purl's type
    (`deb`, `apk`, `rpm`, `pypi`), `build:<type>` for a build stage's package, and `image` for the image.
    """
    data = json.loads(document)
    build = {
        relationship["spdxElementId"]
        for relationship in data.get("relationships", [])
        if relationship["relationshipType"] == "BUILD_DEPENDENCY_OF"
    }
    summary = []
    for package in data.get("packages", []):
        purls = [ref["referenceLocator"] for ref in package.get("externalRefs", []) if ref["referenceType"] == "purl"]
        if package["SPDXID"] == IMAGE_ID:
            kind = "image"
        else:
            kind = purls[0].removeprefix("pkg:").split("/")[0] if purls else "other"
            if package["SPDXID"] in build:
                kind = f"build:{kind}"
        summary.append((kind, package["name"], package.get("versionInfo", "")))
    return summary
