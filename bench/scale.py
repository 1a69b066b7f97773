"""Scale-out: photos/s of the distributed mode with 1 and 2 worker processes (one ONNX thread each).

Usage: .venv/bin/python bench/scale.py [DATA_FOLDER] [--limit 64] [--workers 1,2] [--report PATH]

For each worker count N, in one run and over the same photos: a fresh PostgreSQL database, the API
under uvicorn with SHOEBOX_JOB_BACKEND=dramatiq (RabbitMQ), N `python -m services.jobs.worker
--threads 1 --warm-up` processes with SHOEBOX_ONNX_INTRA_OP_THREADS=1 (models loaded before the clock
starts). The clock runs from the first upload request (16 photos a request, as a client sends them)
until every photo has its analysis row. Reported per N: wall time, photos/s, speed-up over N=1, time
from the first upload request to the first analysed photo, peak RSS (VmHWM) and CPU seconds of each
worker, photos each worker analysed, and the load average (the machine may be shared).

Needs PostgreSQL (SHOEBOX_TEST_POSTGRES_URL, default the local server) and RabbitMQ
(SHOEBOX_BROKER_URL, default amqp://guest:guest@127.0.0.1:5672/%2F).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _service import REPO_ROOT, cpu_seconds, list_images, peak_rss_mib, running_service, upload_folder
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from db.models import PhotoAnalysis, WorkerStat
from services.jobs.distributed import delete_queues

POSTGRES_ADMIN_URL = os.environ.get(
    "SHOEBOX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
BROKER_URL = os.environ.get("SHOEBOX_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
DEFAULT_FOLDER = REPO_ROOT.parent / "shared" / "testdata" / "detection" / "images"


@dataclass
class WorkerFigures:
    worker_id: str
    photos: int
    peak_rss_mib: float | None
    cpu_s: float


@dataclass
class Round:
    workers: int
    photos: int
    wall_s: float
    first_analysed_s: float
    upload_s: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    per_worker: list[WorkerFigures] = field(default_factory=list)

    @property
    def photos_per_s(self) -> float:
        return self.photos / self.wall_s

    @property
    def cores_used(self) -> float:
        """CPU the workers got over the run: 2.0 would be both cores of a 2-core machine."""
        return sum(w.cpu_s for w in self.per_worker) / self.wall_s


def _create_database() -> str:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"shoebox_scale_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def _drop_database(url: str) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def run_round(photos: list[Path], workers: int, chunk: int) -> Round:
    database_url = _create_database()
    namespace = f"bench-{uuid.uuid4().hex[:8]}."
    common = {
        "SHOEBOX_DATABASE_URL": database_url,
        "SHOEBOX_JOB_BACKEND": "dramatiq",
        "SHOEBOX_BROKER_URL": BROKER_URL,
        "SHOEBOX_BROKER_NAMESPACE": namespace,
        "SHOEBOX_ONNX_INTRA_OP_THREADS": "1",
        "SHOEBOX_JOB_POLL_SECONDS": "0.1",
    }
    engine = create_engine(database_url)
    processes: list[subprocess.Popen[bytes]] = []
    scratch = tempfile.TemporaryDirectory(prefix="shoebox-scale-")
    try:
        # The API analyses nothing itself in this mode: no models loaded there.
        with running_service({**common, "SHOEBOX_LOAD_MODELS_AT_START": "false"}) as service:
            for index in range(workers):
                data_dir = Path(scratch.name) / f"worker-{index}"
                data_dir.mkdir()
                env = {
                    **os.environ,
                    **common,
                    "SHOEBOX_DATA_DIR": str(data_dir),
                    "SHOEBOX_BLOB_DIR": str(service.data_dir / "blobs"),
                    "SHOEBOX_MODEL_DIR": os.environ.get("SHOEBOX_MODEL_DIR", str(REPO_ROOT / "models")),
                }
                log = (data_dir / "worker.log").open("wb")
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "services.jobs.worker", "--threads", "1", "--warm-up"],
                        cwd=REPO_ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            deadline = time.monotonic() + 180
            while True:
                with engine.connect() as conn:
                    ready = conn.scalar(select(func.count()).select_from(WorkerStat)) or 0
                if ready >= workers:
                    break
                if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                    raise RuntimeError("workers did not start; logs under " + scratch.name)
                time.sleep(0.2)
            cpu_before = {p.pid: cpu_seconds(p.pid) for p in processes}
            load_before = os.getloadavg()
            started = time.monotonic()
            first_analysed: float | None = None
            # Upload in a thread-free way: requests go one after another while workers already run.
            uploaded = 0
            for start in range(0, len(photos), chunk):
                uploaded += len(upload_folder(service.client, photos[start : start + chunk], chunk=chunk))
                if first_analysed is None and _analysed(engine):
                    first_analysed = time.monotonic() - started
            upload_s = time.monotonic() - started
            assert uploaded == len(photos), f"{uploaded} of {len(photos)} photos uploaded"
            deadline = time.monotonic() + 1800
            while (done := _analysed(engine)) < len(photos):
                if done and first_analysed is None:
                    first_analysed = time.monotonic() - started
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{done} of {len(photos)} analysed")
                time.sleep(0.02)
            wall = time.monotonic() - started
            if first_analysed is None:
                first_analysed = wall
            # A task's counters are committed just after its analysis rows: wait for the last ones.
            while True:
                with engine.connect() as conn:
                    stats = {row.worker_id: row.items_done for row in conn.execute(select(WorkerStat))}
                if sum(stats.values()) >= len(photos) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            per_worker = []
            for process in processes:
                worker_id = next((w for w in stats if w.split(":")[1] == str(process.pid)), str(process.pid))
                per_worker.append(
                    WorkerFigures(
                        worker_id=worker_id,
                        photos=stats.get(worker_id, 0),
                        peak_rss_mib=peak_rss_mib(process.pid),
                        cpu_s=cpu_seconds(process.pid) - cpu_before[process.pid],
                    )
                )
            return Round(
                workers=workers,
                photos=len(photos),
                wall_s=wall,
                first_analysed_s=first_analysed,
                upload_s=upload_s,
                load_before=load_before,
                load_after=os.getloadavg(),
                per_worker=per_worker,
            )
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        engine.dispose()
        _drop_database(database_url)
        delete_queues(BROKER_URL, namespace)
        scratch.cleanup()


def _analysed(engine: object) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.scalar(select(func.count()).select_from(PhotoAnalysis)) or 0)


def report(rounds: list[Round], photos_folder: Path, command: str) -> str:
    counts = sorted({r.workers for r in rounds})
    median_rate = {n: statistics.median(r.photos_per_s for r in rounds if r.workers == n) for n in counts}
    base = median_rate[counts[0]]
    load = ", ".join(f"{r.load_before[0]:.1f}-{r.load_after[0]:.1f}" for r in rounds)
    lines = [
        "# Scale-out: distributed analysis with 1 and 2 worker processes",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {os.cpu_count()} CPU cores, no GPU, "
        f"shared with other jobs (1-minute load average before-after each round, in run order: {load}); "
        f"Python {platform.python_version()}.",
        f"- Command: `{command}`",
        f"- Photos: {rounds[0].photos} from `{photos_folder}`, uploaded over HTTP 16 per request while the "
        "workers run. PostgreSQL, RabbitMQ (Dramatiq), the API under uvicorn; each worker "
        "`python -m services.jobs.worker --threads 1 --warm-up` with SHOEBOX_ONNX_INTRA_OP_THREADS=1 and "
        "tasks of SHOEBOX_TASK_BATCH_SIZE=4 photos. Clock: first upload request to the last analysis row. "
        "Rounds interleaved (1, 2, 1, 2 ...) so that changing load on the machine hits both alike.",
        "",
        "## Medians",
        "",
        "| workers | photos/s | speed-up | upload to first analysed | workers' cores used "
        "| worker CPU s per photo | peak RSS per worker |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in counts:
        mine = [r for r in rounds if r.workers == n]
        first = statistics.median(r.first_analysed_s for r in mine)
        cores = statistics.median(r.cores_used for r in mine)
        rss = max((w.peak_rss_mib or 0) for r in mine for w in r.per_worker)
        cpu_per_photo = statistics.median(sum(w.cpu_s for w in r.per_worker) / r.photos for r in mine)
        lines.append(
            f"| {n} | {median_rate[n]:.2f} | **{median_rate[n] / base:.2f}x** | {first:.2f} s "
            f"| {cores:.2f} | {cpu_per_photo:.3f} | <= {rss:.0f} MiB |"
        )
    lines += [
        "",
        "## Every round",
        "",
        "| workers | wall | photos/s | upload to first analysed | uploads took "
        "| workers' CPU s / wall (cores used) | per worker: photos, peak RSS, CPU s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        per_worker = "; ".join(
            f"{w.photos} photos, {w.peak_rss_mib or 0:.0f} MiB, {w.cpu_s:.1f} s" for w in r.per_worker
        )
        lines.append(
            f"| {r.workers} | {r.wall_s:.1f} s | {r.photos_per_s:.2f} | "
            f"{r.first_analysed_s:.2f} s | {r.upload_s:.1f} s | {r.cores_used:.2f} | {per_worker} |"
        )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--repeats", type=int, default=1, help="rounds per worker count (medians reported)")
    parser.add_argument("--chunk", type=int, default=16)
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "bench" / "reports" / "scale.md")
    args = parser.parse_args()
    photos = list_images(args.folder, args.limit)
    assert len(photos) == args.limit, f"{len(photos)} photos in {args.folder}, {args.limit} asked for"
    rounds = []
    for _repeat in range(args.repeats):
        for workers in (int(n) for n in args.workers.split(",")):
            result = run_round(photos, workers, args.chunk)
            per_worker = [(w.photos, w.peak_rss_mib) for w in result.per_worker]
            print(
                f"{workers} worker(s): {result.wall_s:.1f} s, {result.photos_per_s:.2f} photos/s, first "
                f"analysed after {result.first_analysed_s:.2f} s, per worker (photos, MiB) {per_worker}, "
                f"cores used {result.cores_used:.2f}, load {result.load_before[0]:.1f}",
                flush=True,
            )
            rounds.append(result)
    text_report = report(rounds, args.folder, "python bench/scale.py " + " ".join(sys.argv[1:]))
    print(text_report)
    args.report.write_text(text_report)


if __name__ == "__main__":
    main()
