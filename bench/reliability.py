"""Reliability, the long part (issue 17): `make reliability` runs both checks and exits non-zero on a
failed bar.

uploads  A few hundred generated files (valid, truncated, bit-flipped, lying headers, bombs,
         non-images, duplicates, hostile names) uploaded concurrently to the real service, with
         some requests cut off mid-body like a crashed client, then a burst of 20 concurrent
         38 MiB uploads. Bar: no 5xx, and afterwards photo rows = blobs = distinct accepted files,
         and no temp file is left. Prints the server's peak memory before and after the burst.
crash    On PostgreSQL: two service processes share one library; the one analysing is killed with
         SIGKILL mid-batch. Bar: the other resumes the job within 30 s and every photo is analysed
         exactly once (one analysis row each, the job's done count equals the photo count).

    .venv/bin/python bench/reliability.py [uploads|crash|all] [--files 300] [--burst 20] [--photos 24]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import secrets
import signal
import socket
import struct
import sys
import tempfile
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import REPO_ROOT, list_images, peak_rss_mib, running_service

from db.models import Job, Photo, PhotoAnalysis

TESTDATA = REPO_ROOT.parent / "shared" / "testdata"
POSTGRES_ADMIN_URL = os.environ.get(
    "SHOEBOX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
HOSTILE_NAMES = [
    "\u202egpj.exe",  # right-to-left override
    "../../etc/passwd.jpg",
    "..\\..\\windows\\win.ini.png",
    "a" * 600 + ".jpg",
    "bell\x07and\ttab.jpg",
    "zero\u200bwidth.jpg",
    "e\u0301cole.jpg",  # decomposed: stored NFC
    "",
]


# ---- generated files -------------------------------------------------------------------------


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def generate_files(count: int, rng: random.Random) -> list[tuple[str, bytes]]:
    real = [p.read_bytes() for p in list_images(TESTDATA / "exif" / "images", limit=12)]
    files: list[tuple[str, bytes]] = []
    for index in range(count):
        kind = index % 10
        size = (rng.randint(8, 320), rng.randint(8, 320))
        pixels = np.random.default_rng(index).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        fmt = rng.choice(["JPEG", "PNG", "WEBP", "GIF", "TIFF"])
        data = _encode(image, fmt)
        if kind == 1:
            data = data[: rng.randint(1, max(2, len(data) - 1))]  # truncated
        elif kind == 2:
            flipped = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            data = bytes(flipped)
        elif kind == 3:
            png = bytearray(_encode(image, "PNG"))  # header claims another size, CRC still valid
            header = bytearray(png[16:29])
            header[0:4] = struct.pack(">I", max(1, size[0] + rng.choice([-7, -1, 3, 9])))
            png[16:29] = header
            png[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(header)))
            data = bytes(png)
        elif kind == 4:
            bomb = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)  # 10 gigapixels declared
            data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", bomb) + _png_chunk(b"IEND", b"")
        elif kind == 5:
            data = rng.choice([b"", os.urandom(rng.randint(1, 4096)), b"%PDF-1.4\n" + os.urandom(64)])
        elif kind == 6:
            data = rng.choice(real)  # duplicates of each other across the run
        elif kind == 7:
            exif = Image.Exif()
            exif[0x010F] = "M" * rng.randint(150, 600)
            exif[0x0110] = "model\x00with nul"
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", exif=exif)
            data = buffer.getvalue()
        name = rng.choice(HOSTILE_NAMES) if index % 7 == 0 else f"gen_{index:04d}.{fmt.lower()}"
        files.append((name, data))
    return files


def _cut_off_upload(base_url: str, api_key: str, data: bytes) -> None:
    """A client that dies mid-body: headers promise the whole file, half of it arrives."""
    host, port = base_url.removeprefix("http://").split(":")
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="cut.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    request = (
        f"POST /v1/photos HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request + body[: len(body) // 2])
    # Closed without the rest: the server must drop the request and keep nothing.


BURST_MIB = 38


def _burst(client: Any, count: int, rng: random.Random, accepted: set[str]) -> list[int]:
    """`count` concurrent uploads of a ~38 MiB PNG (noise does not compress): memory must stay
    bounded by the upload slots, not grow with the number of clients."""
    if count <= 0:
        return []
    side = int((BURST_MIB * 1024 * 1024 / 3) ** 0.5)
    pixels = np.random.default_rng(rng.randrange(1 << 30)).integers(0, 255, (side, side, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(pixels), "PNG")
    del pixels

    def send(index: int) -> int:
        response = client.post("/v1/photos", files=[("files", (f"burst{index}.png", data, "image/png"))])
        if response.status_code == 201:
            accepted.add(response.json()["results"][0]["photo"]["sha256"])
        return int(response.status_code)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(send, range(count)))


def check_uploads(file_count: int, seed: int, burst: int) -> bool:
    rng = random.Random(seed)
    files = generate_files(file_count, rng)
    env = {"SHOEBOX_ANALYZE_ON_UPLOAD": "false", "SHOEBOX_LOAD_MODELS_AT_START": "false"}
    with running_service(env) as service:
        client = service.client
        statuses: dict[int, int] = {}
        accepted: set[str] = set()
        problems: list[str] = []

        def send(group: list[tuple[str, bytes]]) -> None:
            if rng.random() < 0.1:
                _cut_off_upload(service.base_url, service.api_key, group[0][1] or b"x" * 100)
                return
            response = client.post(
                "/v1/photos",
                files=[("files", (name, data, "application/octet-stream")) for name, data in group],
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                problems.append(f"{response.status_code}: {response.text[:300]}")
                return
            body = response.json()
            for result in body.get("results", []):
                if result["status"] == "created":
                    accepted.add(result["photo"]["sha256"])
                    if any(ord(ch) < 32 or ch in "\u202e\u200b/\\" for ch in result["filename"]):
                        problems.append(f"stored file name not cleaned: {result['filename']!r}")

        groups: list[list[tuple[str, bytes]]] = []
        position = 0
        while position < len(files):
            width = rng.randint(1, 5)
            groups.append(files[position : position + width])
            position += width
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(send, groups))
        elapsed = time.monotonic() - started
        time.sleep(1.0)  # the cut-off requests finish failing
        peak_before_burst = peak_rss_mib(service.pid)
        burst_statuses = _burst(client, burst, rng, accepted)
        for status in burst_statuses:
            if status >= 500:
                problems.append(f"burst upload answered {status}")

        engine = create_engine(f"sqlite:///{service.db_path}")
        with engine.connect() as connection:
            rows = connection.scalar(select(func.count()).select_from(Photo))
        engine.dispose()
        blobs = [
            p for p in (service.data_dir / "blobs").rglob("*") if p.is_file() and not p.name.startswith(".")
        ]
        temp_files = [p for p in service.data_dir.rglob(".tmp-*")]
        peak = peak_rss_mib(service.pid)

    print(
        json.dumps(
            {
                "check": "uploads",
                "files": len(files),
                "requests": len(groups),
                "statuses": statuses,
                "accepted_distinct": len(accepted),
                "photo_rows": rows,
                "blobs": len(blobs),
                "temp_files": len(temp_files),
                "seconds": round(elapsed, 1),
                "server_peak_rss_mib_before_burst": round(peak_before_burst or 0, 1),
                "burst": {"uploads": burst, "mib_each": BURST_MIB, "statuses": sorted(set(burst_statuses))},
                "server_peak_rss_mib": round(peak or 0, 1),
            }
        )
    )
    ok = not problems and rows == len(blobs) == len(accepted) and not temp_files
    for problem in problems[:20]:
        print(f"  problem: {problem}", file=sys.stderr)
    return ok


# ---- kill -9 during analysis --------------------------------------------------------------------


def _throwaway_postgres() -> tuple[str, str]:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"shoebox_reliability_{secrets.token_hex(5)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop_postgres(name: str) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def check_crash(photo_count: int) -> bool:
    name, url = _throwaway_postgres()
    data_dir = Path(tempfile.mkdtemp(prefix="shoebox-crash-"))
    shared = {
        "SHOEBOX_DATABASE_URL": url,
        "SHOEBOX_DATA_DIR": str(data_dir),
        "SHOEBOX_LOAD_MODELS_AT_START": "true",
        "SHOEBOX_ANALYSIS_BATCH_SIZE": "4",
    }
    engine = create_engine(url)
    try:
        photos = list_images(TESTDATA / "detection" / "images", limit=photo_count) or list_images(
            TESTDATA / "detection", limit=photo_count
        )
        with running_service(shared) as first, running_service(shared) as second:
            files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in photos]
            first.client.post("/v1/photos", files=files).raise_for_status()
            # Kill whichever process holds the job once its first batch is committed.
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                with engine.connect() as connection:
                    job = connection.execute(
                        select(Job.position, Job.state, Job.worker_id).where(Job.type == "analyze")
                    ).first()
                if job is not None and job.state == "running" and 0 < job.position < len(photos):
                    break
                time.sleep(0.2)
            else:
                raise TimeoutError("analysis never got going")
            holder_pid = int(job.worker_id.split(":")[1])
            survivor = second if holder_pid == first.pid else first
            os.kill(holder_pid, signal.SIGKILL)
            killed_at = time.monotonic()
            print(
                f"[crash] killed pid {holder_pid} at position {job.position}/{len(photos)}", file=sys.stderr
            )
            resumed_after = None
            while time.monotonic() - killed_at < 900:
                with engine.connect() as connection:
                    final = connection.execute(
                        select(Job.state, Job.done, Job.failed, Job.attempts).where(Job.type == "analyze")
                    ).one()
                if resumed_after is None and final.attempts >= 2 and final.state != "queued":
                    resumed_after = time.monotonic() - killed_at
                if final.state in ("succeeded", "failed"):
                    break
                time.sleep(0.2)
            with engine.connect() as connection:
                analyses = connection.scalar(select(func.count()).select_from(PhotoAnalysis))
                states = dict(
                    connection.execute(
                        select(Photo.analysis_state, func.count()).group_by(Photo.analysis_state)
                    ).all()
                )
            survivor_peak = peak_rss_mib(survivor.pid)
    finally:
        engine.dispose()
        _drop_postgres(name)
    print(
        json.dumps(
            {
                "check": "crash",
                "photos": len(photos),
                "resumed_after_seconds": None if resumed_after is None else round(resumed_after, 1),
                "job": {
                    "state": final.state,
                    "done": final.done,
                    "failed": final.failed,
                    "attempts": final.attempts,
                },
                "analysis_rows": analyses,
                "photo_states": states,
                "survivor_peak_rss_mib": round(survivor_peak or 0, 1),
            }
        )
    )
    return (
        resumed_after is not None
        and resumed_after <= 30
        and final.state == "succeeded"
        and final.done == len(photos)
        and analyses == len(photos)
        and states == {"done": len(photos)}
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("check", nargs="?", choices=["uploads", "crash", "all"], default="all")
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--photos", type=int, default=24)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--burst", type=int, default=20, help="concurrent 38 MiB uploads after the fuzz run")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.check in ("uploads", "all"):
        results["uploads"] = check_uploads(args.files, args.seed, args.burst)
    if args.check in ("crash", "all"):
        results["crash"] = check_crash(args.photos)
    print(json.dumps({"passed": results}))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
