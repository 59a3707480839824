"""Fill a private store with many small images, as a user's store grows, for the full-store figures.

podman's own CLI start grows with the store (about 0.3 s on an empty one, 0.7 s with 3,000 images), so a
cached build is measured on a fresh store and on a full one. The images are made in one `podman load` of a
docker-archive written here, each with a one-file layer of its own: about 0.1 s an image on this machine.
Images sharing one layer would load faster but are no user's store: podman 4.3 then takes minutes to list
them (300 s for 1,500).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def filler_archive(count: int, target: Path) -> None:
    """A docker-archive of `count` tagged images, localhost/filler/N:latest, each of its own small layer."""
    entries = []
    with tarfile.open(target, "w") as archive:
        for n in range(count):
            layer = io.BytesIO()
            with tarfile.open(fileobj=layer, mode="w") as files:
                _add(files, "filler", f"{n}\n".encode())
            diff_id = "sha256:" + hashlib.sha256(layer.getvalue()).hexdigest()
            _add(archive, f"{n}/layer.tar", layer.getvalue())
            config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
            data = json.dumps(config, sort_keys=True).encode()
            name = hashlib.sha256(data).hexdigest() + ".json"
            _add(archive, name, data)
            entries.append({"Config": name, "RepoTags": [f"localhost/filler/{n}:latest"], "Layers": [f"{n}/layer.tar"]})
        _add(archive, "manifest.json", json.dumps(entries).encode())


def fill_store(env: dict[str, str], count: int) -> None:
    """Load `count` filler images into the store `env` names (never the user's: the caller's private one)."""
    if count <= 0:
        return
    with tempfile.TemporaryDirectory(prefix="imgfront-bench-filler-") as tmp:
        archive = Path(tmp) / "filler.tar"
        filler_archive(count, archive)
        subprocess.run(["podman", "load", "-q", "-i", str(archive)], env=env, check=True, capture_output=True)
