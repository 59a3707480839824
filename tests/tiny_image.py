"""Small images made by hand in a BlobStore: one uncompressed tar layer, a config and a manifest per platform."""

from __future__ import annotations

import io
import tarfile

from imgfront.images.artifacts import canonical_json
from imgfront.images.blobs import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, BlobStore, Descriptor
from imgfront.platforms import Platform


def tar_layer(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def tiny_image(store: BlobStore, platform: str, text: bytes = b"hello\n") -> Descriptor:
    """An image of one file, /hello.txt, for PLATFORM; its manifest's descriptor carries the platform."""
    parsed = Platform.parse(platform)
    layer = tar_layer({"hello.txt": text + platform.encode()})
    layer_digest = store.add_bytes(layer)
    spec = parsed.to_oci()
    config = canonical_json({**spec, "rootfs": {"type": "layers", "diff_ids": [layer_digest]}, "config": {}})
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": Descriptor(OCI_CONFIG, store.add_bytes(config), len(config)).to_json(),
            "layers": [Descriptor(OCI_LAYER, layer_digest, len(layer)).to_json()],
        }
    )
    return Descriptor(OCI_MANIFEST, store.add_bytes(manifest), len(manifest), parsed)
