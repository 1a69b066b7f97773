"""Run the real Shoebox service in a subprocess and talk to it over real HTTP (shared by bench scripts).

`running_service()` starts `uvicorn --factory api.main:create_app` on a free port with a throw-away
data directory and a random bootstrap key, waits for /readyz, yields a `Service`, and stops the process
afterwards. The helpers upload folders in multi-file requests, wait for analysis to finish and read
the server's peak memory, so every figure a bench script prints is what a client of the service would see.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    # Scripts run as `.venv/bin/python bench/x.py`: make `services`, `db` ... importable.
    sys.path.insert(0, str(REPO_ROOT))

UVICORN = REPO_ROOT / ".venv" / "bin" / "uvicorn"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".heic", ".heif", ".gif"})
ACTIVE_JOB_STATES = frozenset({"queued", "running"})
FINAL_ANALYSIS_STATES = frozenset({"done", "failed"})


@dataclass
class Service:
    base_url: str
    api_key: str
    pid: int
    data_dir: Path
    log_path: Path
    client: httpx.Client = field(repr=False)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "shoebox.db"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_service(
    env_overrides: dict[str, str] | None = None, startup_timeout: float = 120.0, keep_data: bool = False
) -> Iterator[Service]:
    """Start the service, wait until /readyz answers 200, yield it, then stop it (SIGINT, then kill)."""
    # mkdtemp, not TemporaryDirectory: the latter removes itself when collected, keep_data or not.
    data_dir = Path(tempfile.mkdtemp(prefix="shoebox-bench-"))
    api_key = f"sbx_bench_{secrets.token_hex(16)}"
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "SHOEBOX_DATA_DIR": str(data_dir),
            "SHOEBOX_BOOTSTRAP_KEY": api_key,
            "SHOEBOX_MODEL_DIR": env.get("SHOEBOX_MODEL_DIR", str(REPO_ROOT / "models")),
            # Load models at start: a bench times ingest, not the first request's model loading.
            "SHOEBOX_LOAD_MODELS_AT_START": env.get("SHOEBOX_LOAD_MODELS_AT_START", "true"),
        }
    )
    env.update(env_overrides or {})
    log_path = data_dir / "server.log"
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [
            str(UVICORN),
            *("--factory", "api.main:create_app"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    # A bench killed with SIGTERM (timeout, kill) must still stop its server: turn the signal into
    # SystemExit so the `finally` below runs (only possible from the main thread).
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGTERM, _raise_system_exit)
    base_url = f"http://127.0.0.1:{port}"
    client = httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=httpx.Timeout(300.0)
    )
    try:
        _wait_ready(client, proc, log_path, startup_timeout)
        yield Service(base_url, api_key, proc.pid, data_dir, log_path, client)
    finally:
        client.close()
        _stop(proc)
        log_file.close()
        if previous_handler is not None:
            signal.signal(signal.SIGTERM, previous_handler)
        if keep_data:
            print(f"[service] data kept in {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def _raise_system_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _wait_ready(client: httpx.Client, proc: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"service exited with {proc.returncode} during start-up:\n{tail}")
        try:
            if client.get("/readyz", timeout=5.0).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.25)
    raise TimeoutError(f"service not ready after {timeout:.0f}s; log: {log_path}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)  # uvicorn shuts down gracefully (job runner stopped in lifespan)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


# ---- helpers -------------------------------------------------------------------------------------


def list_images(folder: Path, limit: int | None = None) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return files[:limit] if limit else files


def chunked(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def upload_folder(client: httpx.Client, paths: Sequence[Path], chunk: int = 16) -> dict[str, str]:
    """Upload files in multi-file requests; returns {file name: photo id} for created/duplicate files.

    Results come back in request order, so they are matched to our paths by position (the service may
    tidy the file name it echoes).
    """
    ids: dict[str, str] = {}
    for group in chunked(paths, chunk):
        files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in group]
        response = client.post("/v1/photos", files=files)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"upload failed: {response.status_code} {response.text[:500]}")
        for path, result in zip(group, response.json()["results"], strict=True):
            if result["status"] in ("created", "duplicate") and result.get("photo"):
                ids[path.name] = result["photo"]["id"]
            else:
                print(f"[upload] {path.name}: {result['status']} {result.get('error')}", file=sys.stderr)
    return ids


def list_all(client: httpx.Client, path: str, limit: int) -> list[dict[str, Any]]:
    """Every item of a paginated listing, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = client.get(path, params=params)
        page.raise_for_status()
        body = page.json()
        items.extend(body["items"])
        cursor = body.get("next_cursor")
        if not cursor:
            return items


def list_jobs(client: httpx.Client) -> list[dict[str, Any]]:
    return list_all(client, "/v1/jobs", 200)


def list_photos(client: httpx.Client) -> list[dict[str, Any]]:
    return list_all(client, "/v1/photos", 500)


def wait_for_analysis(
    client: httpx.Client, expected: int, timeout: float = 3600.0, poll: float = 0.5
) -> tuple[float, list[dict[str, Any]]]:
    """Block until no job is queued/running and every photo's analysis is done/failed.

    Polls the cheap jobs list, not the photo list, so polling itself costs the server little.
    Returns (epoch seconds when the last job finished, per the server's `finished_at`, or the poll time
    when unavailable; the final photo list).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = list_jobs(client)
        if jobs and not any(j["state"] in ACTIVE_JOB_STATES for j in jobs):
            photos = list_photos(client)
            if len(photos) >= expected and all(p["analysis_state"] in FINAL_ANALYSIS_STATES for p in photos):
                finished = [iso_to_epoch(j["finished_at"]) for j in jobs if j.get("finished_at")]
                return (max(finished) if finished else time.time()), photos
        time.sleep(poll)
    raise TimeoutError(f"analysis not finished after {timeout:.0f}s")


def iso_to_epoch(stamp: str) -> float:
    # The server writes naive UTC or offset-aware ISO stamps; naive ones are UTC (db.types.utcnow).
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def peak_rss_mib(pid: int) -> float | None:
    """VmHWM (peak resident set) of a process, in MiB; None when /proc cannot tell."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the ")" that ends the command name: utime and stime are fields 14 and 15 of stat(5).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def route_exists(client: httpx.Client, path: str, method: str = "get") -> bool:
    """Whether the running app's OpenAPI document lists this route (e.g. a not-yet-merged endpoint)."""
    spec = client.get("/openapi.json").json()
    return method in spec.get("paths", {}).get(path, {})
