"""Content-addressed blob store on local disk with atomic writes, plus a cache of derived images."""

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the same directory + fsync + rename + fsync(dir): readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class BlobStore:
    """Blobs are named by the sha256 of their bytes; derived files (thumbnails...) by blob + variant."""

    def __init__(self, blob_dir: Path, cache_dir: Path) -> None:
        self.blob_dir = blob_dir
        self.cache_dir = cache_dir
        blob_dir.mkdir(parents=True, exist_ok=True)
        cache_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.blob_dir / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes, sha256: str | None = None) -> str:
        sha256 = sha256 or sha256_hex(data)
        path = self.path_for(sha256)
        if not path.exists():
            atomic_write(path, data)
        else:
            # A fresh time stamp keeps the orphan sweep off a blob an upload is about to reference.
            try:
                os.utime(path)
            except FileNotFoundError:
                atomic_write(path, data)
        return sha256

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def delete(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)
        for cached in self.cache_dir.glob(f"{sha256[:2]}/{sha256}*"):
            cached.unlink(missing_ok=True)

    def derived_path(self, sha256: str, variant: str) -> Path:
        return self.cache_dir / sha256[:2] / f"{sha256}.{variant}"

    def get_or_make_derived(self, sha256: str, variant: str, make: Callable[[bytes], bytes]) -> Path:
        """Made once and cached; concurrent makers race harmlessly thanks to the atomic rename."""
        path = self.derived_path(sha256, variant)
        if not path.is_file():
            atomic_write(path, make(self.read(sha256)))
        return path
