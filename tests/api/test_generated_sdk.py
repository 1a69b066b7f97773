"""A Python SDK generated from the OpenAPI document as it is drives the whole product on real photos.

openapi-python-client writes the client into a temporary folder; the test then uses only its typed
functions and models: upload, analyse (a job, polled), label a face, search by text and by image,
export, download the zip. A schema the generator cannot read is a warning that drops an operation or a
response, so the test also fails on any "will be omitted" line.
"""

import importlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.test_faces import FACES_DIR, FACES_TRUTH
from tests.conftest import new_owner

PACKAGE = "shoebox_sdk"
# The generator reads bytes only from application/octet-stream unless told which other media types are
# binary; the document declares them as `format: binary`, this maps them (openapi.md says the same).
GENERATOR_CONFIG = {
    "package_name_override": PACKAGE,
    "content_type_overrides": {
        media_type: "application/octet-stream"
        for media_type in [
            "image/jpeg",
            "image/png",
            "image/webp",
            "image/tiff",
            "image/heic",
            "image/heif",
            "image/gif",
            "image/avif",
            "application/zip",
        ]
    },
}


@pytest.fixture(scope="module")
def sdk(client: TestClient, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("sdk")
    document = folder / "openapi.json"
    document.write_text(json.dumps(client.app.openapi()))  # type: ignore[attr-defined]
    config = folder / "config.json"
    config.write_text(json.dumps(GENERATOR_CONFIG))
    bin_dir = Path(sys.executable).parent
    generated = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(document),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        timeout=300,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert "will be omitted" not in output, output
    assert "WARNING" not in output, output
    sys.path.insert(0, str(folder))
    try:
        modules = {
            name: importlib.import_module(f"{PACKAGE}.{name}")
            for name in [
                "client",
                "models",
                "types",
                "api.photos.photos_upload",
                "api.photos.photos_get",
                "api.photos.photos_thumbnail",
                "api.jobs.jobs_create",
                "api.jobs.jobs_get",
                "api.faces.faces_of_photo",
                "api.faces.faces_label",
                "api.search.search_text",
                "api.search.search_by_image",
                "api.exports.exports_create",
                "api.exports.exports_get",
                "api.exports.exports_download",
            ]
        }
        yield modules
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _poll(fetch: Any, done: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_generated_sdk_drives_upload_to_download(client: TestClient, sdk: dict[str, ModuleType]) -> None:
    owner = new_owner(client)
    models, types = sdk["models"], sdk["types"]
    api = sdk["client"].AuthenticatedClient(
        base_url="http://testserver", token=owner.key, raise_on_unexpected_status=True
    )
    # The same running app, reached through the generated client's own request code.
    api.set_httpx_client(TestClient(client.app, headers=owner.headers))

    by_person: dict[str, list[str]] = defaultdict(list)
    for name, person in sorted(FACES_TRUTH.items()):
        by_person[person].append(name)
    person, names = next((p, n) for p, n in sorted(by_person.items()) if len(n) >= 2)
    chosen = [names[0], names[1]]

    body = models.BodyPhotosUpload(
        files=[
            types.File(
                payload=io.BytesIO((FACES_DIR / "images" / n).read_bytes()),
                file_name=n,
                mime_type="image/jpeg",
            )
            for n in chosen
        ]
    )
    uploaded = sdk["api.photos.photos_upload"].sync_detailed(client=api, body=body)
    assert uploaded.status_code == 201, uploaded.content
    results = uploaded.parsed.results
    assert [r.status for r in results] == [models.UploadStatus.CREATED] * 2
    photo_ids = [r.photo.id for r in results]
    assert all(isinstance(r.photo, models.Photo) for r in results)

    job = sdk["api.jobs.jobs_create"].sync(
        client=api, body=models.JobCreate(type_=models.JobType.ANALYZE, photo_ids=photo_ids)
    )
    assert isinstance(job, models.Job), job
    finished = models.JobState.SUCCEEDED, models.JobState.FAILED, models.JobState.CANCELLED
    job = _poll(lambda: sdk["api.jobs.jobs_get"].sync(job.id, client=api), lambda j: j.state in finished)
    assert job.state == models.JobState.SUCCEEDED and job.done == 2, job
    photo = sdk["api.photos.photos_get"].sync(photo_ids[0], client=api)
    assert photo.analysis_state == models.AnalysisState.DONE

    thumbnail = sdk["api.photos.photos_thumbnail"].sync(photo_ids[0], client=api)
    assert isinstance(thumbnail, types.File) and thumbnail.payload.read(3) == b"\xff\xd8\xff"

    faces = sdk["api.faces.faces_of_photo"].sync(photo_ids[0], client=api)
    assert isinstance(faces, models.PageFace) and faces.items, faces
    main_face = max(faces.items, key=lambda face: face.bbox[2] * face.bbox[3])
    labelled = sdk["api.faces.faces_label"].sync(
        client=api, body=models.FaceLabel(face_ids=[main_face.id], name=person)
    )
    assert isinstance(labelled, models.PageFace), labelled
    assert labelled.items[0].person.name == person
    assert labelled.items[0].person_source == models.PersonSource.USER

    found = sdk["api.search.search_text"].sync(client=api, q=person)
    assert isinstance(found, models.SearchPage), found
    assert photo_ids[0] in [hit.photo.id for hit in found.items]
    first = next(hit for hit in found.items if hit.photo.id == photo_ids[0])
    assert models.MatchField.PERSON in [match.field for match in first.matched]

    example = types.File(
        payload=io.BytesIO((FACES_DIR / "images" / chosen[0]).read_bytes()),
        file_name="x.jpg",
        mime_type="image/jpeg",
    )
    similar = sdk["api.search.search_by_image"].sync(
        client=api, body=models.BodySearchByImage(file=example), limit=5
    )
    assert isinstance(similar, models.SearchPage), similar
    assert similar.items[0].photo.id == photo_ids[0]
    assert similar.items[0].matched[0].field == models.MatchField.IMAGE

    export = sdk["api.exports.exports_create"].sync(client=api, body=models.ExportCreate(photo_ids=photo_ids))
    assert isinstance(export, models.Export), export
    final = models.ExportState.READY, models.ExportState.FAILED, models.ExportState.CANCELLED
    export = _poll(
        lambda: sdk["api.exports.exports_get"].sync(export.id, client=api), lambda e: e.state in final
    )
    assert export.state == models.ExportState.READY, export
    download = sdk["api.exports.exports_download"].sync_detailed(export.id, client=api)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    assert export.size_bytes == len(download.content)  # the zip's bytes, not its entry count
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    assert sorted(n for n in archive.namelist() if n.endswith(".jpg")) == sorted(chosen)
    assert archive.testzip() is None

    # Errors come back as the typed Problem.
    missing = sdk["api.photos.photos_get"].sync_detailed("no-such-photo", client=api)
    assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem)
    assert missing.parsed.status == 404
