"""One contract for every blob store: the local directory and an S3-compatible bucket (a real S3 server,
moto's, over HTTP on a free port)."""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from core.storage import BlobStore, LocalBlobStore, S3BlobStore, sha256_hex
from tests.conftest import make_settings, new_owner
from tests.helpers import upload_ids, wait_for_job
from tests.paths import TESTDATA_DIR
from tests.reliability.live_server import free_port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server_module = pytest.importorskip("moto.server")
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs", tmp_path / "cache")
    import boto3

    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"shoebox-{os.urandom(4).hex()}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return S3BlobStore(bucket=bucket, prefix="originals/", cache_dir=tmp_path / "cache", client=client)


def test_put_read_exists_delete(store: BlobStore) -> None:
    data = b"photo bytes " + os.urandom(16)
    sha256 = store.put(data)
    assert sha256 == sha256_hex(data)
    assert store.exists(sha256) and store.read(sha256) == data
    assert store.put(data) == sha256  # the same bytes again: one blob
    assert [name for name, _ in store.iter_blobs()] == [sha256]
    store.delete(sha256)
    assert not store.exists(sha256) and store.modified_at(sha256) is None
    with pytest.raises(FileNotFoundError):
        store.read(sha256)
    with pytest.raises(FileNotFoundError):
        store.local_path(sha256)


def test_a_local_file_and_derived_images_are_served_from_the_machine_cache(store: BlobStore) -> None:
    data = b"original " + os.urandom(16)
    sha256 = store.put(data)
    assert store.local_path(sha256).read_bytes() == data
    made: list[bytes] = []

    def make(original: bytes) -> bytes:
        made.append(original)
        return original.upper()

    first = store.get_or_make_derived(sha256, "thumb", make)
    second = store.get_or_make_derived(sha256, "thumb", make)
    assert first == second and first.read_bytes() == data.upper() and made == [data]
    store.delete(sha256)
    assert not first.exists()  # the cache goes with the blob


def test_putting_an_existing_blob_again_refreshes_its_time_stamp(store: BlobStore) -> None:
    sha256 = store.put(b"kept by a new upload " + os.urandom(8))
    before = store.modified_at(sha256)
    assert before is not None and abs(before - time.time()) < 120
    if isinstance(store, LocalBlobStore):
        os.utime(store.path_for(sha256), (before - 7200, before - 7200))
        before -= 7200
    else:
        time.sleep(1.1)  # S3 time stamps have a resolution of a second
    store.put(store.read(sha256))
    after = store.modified_at(sha256)
    assert after is not None and after > before


def test_the_service_keeps_originals_in_an_s3_bucket(
    s3_endpoint: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import boto3

    bucket = f"shoebox-{os.urandom(4).hex()}"
    client_s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client_s3.create_bucket(Bucket=bucket)
    settings = make_settings(
        "sqlite",
        tmp_path,
        request,
        blob_backend="s3",
        s3_bucket=bucket,
        s3_endpoint_url=s3_endpoint,
        s3_region="us-east-1",
        analyze_on_upload=False,
    )
    photo = sorted((TESTDATA_DIR / "detection" / "images").glob("*.jpg"))[0]
    data = photo.read_bytes()
    with TestClient(create_app(settings)) as client:
        owner = new_owner(client)
        photo_id = upload_ids(client, owner, [(photo.name, data)])[photo.name]
        assert not (tmp_path / "blobs").exists() or not any((tmp_path / "blobs").rglob("*"))
        stored = client_s3.get_object(Bucket=bucket, Key=sha256_hex(data))["Body"].read()
        assert stored == data
        original = client.get(f"/v1/photos/{photo_id}/original", headers=owner.headers)
        assert original.status_code == 200 and original.content == data
        thumbnail = client.get(f"/v1/photos/{photo_id}/thumbnail?size=256", headers=owner.headers)
        assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
        job = client.post(
            "/v1/jobs", json={"type": "analyze", "photo_ids": [photo_id]}, headers=owner.headers
        )
        assert job.status_code == 202
        assert wait_for_job(client, owner, job.json()["id"], timeout=60)["done"] == 1
