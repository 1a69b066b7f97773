"""Content-addressed blob stores (local directory or S3-compatible bucket) with atomic writes, plus a
per-machine cache of derived images (thumbnails...) on local disk."""

import hashlib
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


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


def _remove_temp_files(root: Path, cutoff: float) -> int:
    removed = 0
    for path in root.rglob(".tmp-*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        except OSError:
            continue
    return removed


class BlobStore(ABC):
    """Blobs are named by the sha256 of their bytes; derived files (thumbnails...) by blob + variant.

    Every machine (API, workers) must reach the same blobs; the derived cache is local to a machine.
    """

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        cache_dir.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store the bytes (atomically; a put of an existing blob refreshes its time stamp)."""

    @abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    def read(self, sha256: str) -> bytes:
        """The blob's bytes; FileNotFoundError when it is missing."""

    @abstractmethod
    def _delete_blob(self, sha256: str) -> None: ...

    @abstractmethod
    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        """(sha256, modified time as a Unix time) of every stored blob."""

    @abstractmethod
    def modified_at(self, sha256: str) -> float | None:
        """The blob's modified time, None when it is missing."""

    @abstractmethod
    def local_path(self, sha256: str) -> Path:
        """A file on this machine holding the blob's bytes (for streamed responses);
        FileNotFoundError when the blob is missing."""

    def remove_temp_files(self, cutoff: float) -> int:
        """Temp files of crashed writes older than `cutoff` (a Unix time) are removed; how many."""
        return _remove_temp_files(self.cache_dir, cutoff)

    def delete(self, sha256: str) -> None:
        self._delete_blob(sha256)
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


class LocalBlobStore(BlobStore):
    """Blobs in a directory (a local disk, or a shared filesystem every machine mounts)."""

    def __init__(self, blob_dir: Path, cache_dir: Path) -> None:
        super().__init__(cache_dir)
        self.blob_dir = blob_dir
        blob_dir.mkdir(parents=True, exist_ok=True)

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

    def _delete_blob(self, sha256: str) -> None:
        self.path_for(sha256).unlink(missing_ok=True)

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        for path in self.blob_dir.rglob("*"):
            if len(path.name) == 64 and not path.name.startswith("."):
                try:
                    yield path.name, path.stat().st_mtime
                except OSError:
                    continue

    def modified_at(self, sha256: str) -> float | None:
        try:
            return self.path_for(sha256).stat().st_mtime
        except OSError:
            return None

    def local_path(self, sha256: str) -> Path:
        path = self.path_for(sha256)
        if not path.is_file():
            raise FileNotFoundError(sha256)
        return path

    def remove_temp_files(self, cutoff: float) -> int:
        return _remove_temp_files(self.blob_dir, cutoff) + super().remove_temp_files(cutoff)


class S3BlobStore(BlobStore):
    """Blobs as objects `<prefix><sha256>` in an S3-compatible bucket (AWS S3, MinIO, Ceph, Garage...).

    A PUT is atomic in S3, so readers never see half an object. Credentials come from boto3's usual
    sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance role). Originals served
    as files are downloaded once into this machine's cache.
    """

    def __init__(
        self,
        *,
        bucket: str,
        cache_dir: Path,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        super().__init__(cache_dir)
        if client is None:
            import boto3  # only S3 deployments need it

            client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _key(self, sha256: str) -> str:
        return f"{self.prefix}{sha256}"

    def _head(self, sha256: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self._key(sha256))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head

    def put(self, data: bytes, sha256: str | None = None) -> str:
        sha256 = sha256 or sha256_hex(data)
        if self._head(sha256) is None:
            self.client.put_object(Bucket=self.bucket, Key=self._key(sha256), Body=data)
        else:
            # Copying the object onto itself refreshes its time stamp (the orphan sweep's guard).
            self.client.copy_object(
                Bucket=self.bucket,
                Key=self._key(sha256),
                CopySource={"Bucket": self.bucket, "Key": self._key(sha256)},
                MetadataDirective="REPLACE",
            )
        return sha256

    def exists(self, sha256: str) -> bool:
        return self._head(sha256) is not None

    def read(self, sha256: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(sha256))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(sha256) from error
            raise
        body: bytes = response["Body"].read()
        return body

    def _delete_blob(self, sha256: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(sha256))
        self.derived_path(sha256, "original").unlink(missing_ok=True)

    def iter_blobs(self) -> Iterator[tuple[str, float]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                name = str(item["Key"])[len(self.prefix) :]
                if len(name) == 64:
                    yield name, float(item["LastModified"].timestamp())

    def modified_at(self, sha256: str) -> float | None:
        head = self._head(sha256)
        return None if head is None else float(head["LastModified"].timestamp())

    def local_path(self, sha256: str) -> Path:
        return self.get_or_make_derived(sha256, "original", lambda data: data)


def open_blob_store(
    *,
    backend: str,
    blob_dir: Path,
    cache_dir: Path,
    s3_bucket: str | None = None,
    s3_prefix: str = "",
    s3_endpoint_url: str | None = None,
    s3_region: str | None = None,
) -> BlobStore:
    """The store the settings name: `local` (a directory) or `s3` (a bucket)."""
    if backend == "s3":
        if not s3_bucket:
            raise ValueError("SHOEBOX_BLOB_BACKEND=s3 needs SHOEBOX_S3_BUCKET")
        return S3BlobStore(
            bucket=s3_bucket,
            cache_dir=cache_dir,
            prefix=s3_prefix,
            endpoint_url=s3_endpoint_url,
            region=s3_region,
        )
    return LocalBlobStore(blob_dir, cache_dir)
