"""Ingest on CPU: end-to-end upload + analysis through the real service vs model inference alone.

Usage: .venv/bin/python bench/ingest.py DATA_FOLDER [--limit N] [--batch-sizes 1,8] [--chunk 16]
                                       [--threads 0] [--repeats 1]

DATA_FOLDER holds images/ (any layout of the testdata sets). For each batch size B:

1. end to end: a fresh service (SHOEBOX_ANALYSIS_BATCH_SIZE=B) gets the images over HTTP in
   multi-file requests of --chunk files; the clock runs from the first upload request until the last
   analyze job finished (its server-side `finished_at`), i.e. until the last photo is analysed. The
   server's peak RSS (VmHWM) is read before it stops.
2. inference alone, with the service stopped (both compete for the same cores otherwise): this process
   loads the same models, decodes the same images beforehand exactly as the analysis job does
   (services.photos.images.load_oriented, max side 1280; not timed) and times the job's model step,
   services.analysis.service.analyze_images (objects.detect + labels.predict, + faces.analyze, the
   quality metrics and the rotation check where the service runs them), batched like the service: B
   photos per call within each upload chunk, because the service makes one analyze job per upload
   request. Per-model times are printed too.

The machine may be shared: wall times then swing with other load, so each round also records CPU
seconds (server process vs this process) and the load average; --repeats N reports medians.

SPEC 6 bar: end to end within 1.5x of inference alone. Both sides use the same ONNX thread setting
(SHOEBOX_ONNX_INTRA_OP_THREADS, --threads; 0 lets onnxruntime choose).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _service import (
    cpu_seconds,
    iso_to_epoch,
    list_images,
    list_jobs,
    peak_rss_mib,
    running_service,
    upload_folder,
    wait_for_analysis,
)

RATIO_BAR = 1.5
# (ModelSet role, method the analysis job calls): timed separately for the per-model breakdown.
MODEL_PARTS = (("objects", "detect"), ("labels", "predict"), ("faces", "analyze"))


@dataclass
class EndToEnd:
    seconds: float  # first upload request -> last analyze job finished
    cpu_seconds: float  # server process CPU (all threads) over the same span
    upload_seconds: float
    busy_seconds: float  # sum over jobs of finished_at - started_at: the worker's analysis time
    jobs: int
    photos: int
    failed: int
    peak_rss_mib: float | None


@dataclass
class InferenceAlone:
    seconds: float
    cpu_seconds: float
    decode_seconds: float
    calls: int
    per_model: dict[str, float] = field(default_factory=dict)
    rotation_checked: int = 0  # images the job probes for a sideways orientation

    @property
    def core_seconds(self) -> float:
        """The photo's own model runs (objects, labels, faces), without the rotation check."""
        return self.seconds - self.per_model.get("rotation check", 0.0)


def configure_env(batch_size: int, threads: int) -> dict[str, str]:
    return {"SHOEBOX_ANALYSIS_BATCH_SIZE": str(batch_size), "SHOEBOX_ONNX_INTRA_OP_THREADS": str(threads)}


def run_end_to_end(paths: list[Path], batch_size: int, threads: int, chunk: int) -> EndToEnd:
    with running_service(configure_env(batch_size, threads)) as service:
        cpu_before = cpu_seconds(service.pid)
        started = time.time()
        ids = upload_folder(service.client, paths, chunk=chunk)
        uploaded = time.time()
        finished, photos = wait_for_analysis(service.client, expected=len(ids), poll=0.25)
        cpu = cpu_seconds(service.pid) - cpu_before
        rss = peak_rss_mib(service.pid)
        jobs = [j for j in list_jobs(service.client) if j["type"] == "analyze"]
    busy = sum(
        iso_to_epoch(j["finished_at"]) - iso_to_epoch(j["started_at"])
        for j in jobs
        if j["started_at"] and j["finished_at"]
    )
    return EndToEnd(
        seconds=finished - started,
        cpu_seconds=cpu,
        upload_seconds=uploaded - started,
        busy_seconds=busy,
        jobs=len(jobs),
        photos=len(ids),
        failed=sum(p["analysis_state"] != "done" for p in photos),
        peak_rss_mib=rss,
    )


def run_inference_alone(paths: list[Path], batch_size: int, threads: int, chunk: int) -> InferenceAlone:
    # Same settings as the service process; get_settings() is cached, so clear it after changing env.
    os.environ.update(configure_env(batch_size, threads))
    import services.analysis.service as analysis
    from core.config import get_settings
    from services.inference.models import ModelSet
    from services.photos.images import ANALYSIS_MAX_SIDE, load_oriented

    get_settings.cache_clear()
    models = ModelSet(get_settings())

    blobs = [p.read_bytes() for p in paths]
    t0 = time.perf_counter()
    images = [load_oriented(data, max_side=ANALYSIS_MAX_SIDE) for data in blobs]
    decode_seconds = time.perf_counter() - t0
    flags = rotation_check_flags(blobs)
    parameters = inspect.signature(analysis.analyze_images).parameters
    takes_flags = flags is not None and "check_rotation" in parameters
    # The job computes the quality metrics inside its model step (since they read the face boxes);
    # what they need from the file is read with the decode, outside the clock.
    sources = quality_sources(analysis, blobs) if "quality_sources" in parameters else None

    # Time the analysis job's own model step, services.analysis.service.analyze_images (every model it runs:
    # objects + labels + faces, rotation check where the job makes them, and the negligible tag
    # derivation), and each part inside it by wrapping the entry points for the duration of the run.
    per_part: dict[str, float] = {}
    restore: list[tuple[object, str, bool]] = []  # (owner, attribute, was set on the instance)
    # Nested calls (the rotation check runs the detector) count for the outermost part only; per thread,
    # as the analysis runs the detector's lane in a thread of its own (so parts can sum past the wall time).
    depth = threading.local()
    targets: list[tuple[str, object, str]] = [
        (role, getattr(models, role, None), m) for role, m in MODEL_PARTS
    ]
    targets.append(("rotation check", analysis, "check_rotations"))
    for part, owner, attribute in targets:
        if owner is not None and hasattr(owner, attribute):
            per_part[part] = 0.0
            restore.append((owner, attribute, attribute in vars(owner)))
            original = getattr(owner, attribute)
            setattr(owner, attribute, _timed(original, per_part, part, depth))
    try:

        def run(start: int, end: int, batch_flags: list[bool]) -> None:
            batch = images[start:end]
            if sources is not None:
                analysis.analyze_images(batch, models, batch_flags, sources[start:end])
            elif takes_flags:
                analysis.analyze_images(batch, models, check_rotation=batch_flags)
            else:
                analysis.analyze_images(batch, models)

        # Warm-up outside the clock: the service has also built its sessions before the first upload.
        run(0, 1, [False])
        per_part.update(dict.fromkeys(per_part, 0.0))
        all_flags = flags or [False] * len(images)
        calls = 0
        seconds = 0.0
        cpu_before = time.process_time()  # this process, all threads (onnxruntime's pool included)
        for request_start in range(0, len(images), chunk):
            request_end = min(request_start + chunk, len(images))
            for start in range(request_start, request_end, batch_size):
                end = min(start + batch_size, request_end)
                t0 = time.perf_counter()
                run(start, end, all_flags[start:end])
                seconds += time.perf_counter() - t0
                calls += 1
        cpu = time.process_time() - cpu_before
    finally:
        for owner, attribute, on_instance in restore:
            if on_instance:  # a module function: put the original back
                setattr(owner, attribute, getattr(owner, attribute).__wrapped__)
            else:  # a method: drop the instance attribute, the class's method shows again
                delattr(owner, attribute)
    return InferenceAlone(
        seconds=seconds,
        cpu_seconds=cpu,
        decode_seconds=decode_seconds,
        calls=calls,
        per_model={part: t for part, t in per_part.items() if t > 0},  # parts the job did not call drop out
        rotation_checked=sum(all_flags) if takes_flags else 0,
    )


def quality_sources(analysis: Any, blobs: list[bytes]) -> list[Any]:
    """What the job hands the quality metrics for each file: its JPEG quantisation tables and the size
    the upload recorded (the decoded image may be scaled down to the analysis side)."""
    from core.config import get_settings
    from services.photos.images import inspect_image
    from services.quality.assess import jpeg_tables

    settings = get_settings()
    out = []
    for data in blobs:
        info = inspect_image(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
        out.append(analysis.QualitySource(jpeg_tables(data), (info.width, info.height)))
    return out


def rotation_check_flags(blobs: list[bytes]) -> list[bool] | None:
    """Per image, whether the analysis job looks for a sideways photo (files without camera EXIF
    orientation), decided exactly as the job does from the upload's EXIF; None on versions without it."""
    try:
        from services.quality.rotation import needs_rotation_check
    except ImportError:
        return None
    from core.config import get_settings
    from services.photos.images import inspect_image

    settings = get_settings()
    flags = []
    for data in blobs:
        exif = inspect_image(
            data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
        ).exif
        flags.append(needs_rotation_check(exif.orientation, exif.make))
    return flags


def _timed(
    fn: Callable[..., Any], totals: dict[str, float], key: str, depth: threading.local
) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        depth.value = getattr(depth, "value", 0) + 1
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            depth.value -= 1
            if depth.value == 0:
                totals[key] += time.perf_counter() - t0

    return wrapper


def median_e2e(runs: list[EndToEnd]) -> EndToEnd:
    """The run with the median wall time (kept whole, so its columns belong together)."""
    return sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]


def median_alone(runs: list[InferenceAlone]) -> InferenceAlone:
    return sorted(runs, key=lambda r: r.seconds)[(len(runs) - 1) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_folder", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by name)")
    parser.add_argument(
        "--batch-sizes", default="1,8", help="comma-separated SHOEBOX_ANALYSIS_BATCH_SIZE values"
    )
    parser.add_argument("--chunk", type=int, default=16, help="files per upload request")
    parser.add_argument("--threads", type=int, default=0, help="SHOEBOX_ONNX_INTRA_OP_THREADS for both sides")
    parser.add_argument(
        "--repeats", type=int, default=1, help="rounds over all batch sizes; medians reported"
    )
    args = parser.parse_args()

    folder = args.data_folder / "images" if (args.data_folder / "images").is_dir() else args.data_folder
    paths = list_images(folder, args.limit)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    threads = args.threads or "auto"
    print(
        f"{len(paths)} images from {folder}; upload chunks of {args.chunk}; batch sizes {batch_sizes}; "
        f"onnx intra-op threads {threads}; {os.cpu_count()} cpus; repeats {args.repeats}"
    )

    e2e_runs: dict[int, list[EndToEnd]] = defaultdict(list)
    alone_runs: dict[int, list[InferenceAlone]] = defaultdict(list)
    # Rounds interleave the batch sizes, so slow phases of a noisy machine do not hit one size only.
    for repeat in range(args.repeats):
        for batch_size in batch_sizes:
            e2e = run_end_to_end(paths, batch_size, args.threads, args.chunk)
            alone = run_inference_alone(paths, batch_size, args.threads, args.chunk)
            e2e_runs[batch_size].append(e2e)
            alone_runs[batch_size].append(alone)
            load = os.getloadavg()[0]
            print(
                f"round {repeat + 1} batch {batch_size:3d} (load {load:.1f}): end to end {e2e.seconds:6.2f}s "
                f"(cpu {e2e.cpu_seconds:.1f}s, uploads {e2e.upload_seconds:.2f}s, worker busy "
                f"{e2e.busy_seconds:.2f}s, {e2e.jobs} jobs, {e2e.failed} failed) | inference alone "
                f"{alone.seconds:6.2f}s (cpu {alone.cpu_seconds:.1f}s, {alone.calls} calls)",
                flush=True,
            )

    n = len(paths)
    rows = [(b, median_e2e(e2e_runs[b]), median_alone(alone_runs[b])) for b in batch_sizes]
    print("\n==== ingest summary (CPU, through the HTTP API; medians) ====")
    print(f"{n} images, upload chunks of {args.chunk}, {os.cpu_count()} cpus, intra-op threads {threads}")
    print(
        "batch | end-to-end s  photos/s | inference-alone s  photos/s  ratio  bar<=1.5 | "
        "core-models s  ratio | cpu-s e2e  cpu-s alone  cpu ratio | peak RSS MiB"
    )
    for batch_size, e2e, alone in rows:
        ratio = e2e.seconds / alone.seconds
        verdict = "PASS" if ratio <= RATIO_BAR else "FAIL"
        print(
            f"{batch_size:5d} | {e2e.seconds:12.2f}  {n / e2e.seconds:8.2f} | {alone.seconds:17.2f}  "
            f"{n / alone.seconds:8.2f}  {ratio:5.2f}  {verdict:8s} | {alone.core_seconds:13.2f}  "
            f"{e2e.seconds / alone.core_seconds:5.2f} | {e2e.cpu_seconds:9.1f}  {alone.cpu_seconds:11.1f}  "
            f"{e2e.cpu_seconds / alone.cpu_seconds:9.2f} | {e2e.peak_rss_mib or float('nan'):12.0f}"
        )
    print(
        "inference alone = every model run the analysis job makes, and the quality metrics it runs with "
        "them (analysis.service.analyze_images); "
        "core models = the same without the rotation check"
        + (f" (made for {rows[0][2].rotation_checked} of {n} images)" if rows[0][2].rotation_checked else "")
    )
    base_b, base_e2e, base_alone = rows[0]
    for batch_size, e2e, alone in rows[1:]:
        print(
            f"batch {batch_size} vs {base_b}: end to end x{base_e2e.seconds / e2e.seconds:.2f} as fast, "
            f"inference alone x{base_alone.seconds / alone.seconds:.2f} as fast"
        )
    for batch_size, e2e, alone in rows:
        parts = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in alone.per_model.items())
        print(
            f"batch {batch_size}: inference alone by model: {parts}; service: uploads answered after "
            f"{e2e.upload_seconds:.2f}s, analyze worker busy {e2e.busy_seconds:.2f}s over {e2e.jobs} jobs"
        )
    print(
        "decode alone (load_oriented, max side 1280; in end to end, not in inference alone): "
        f"{rows[0][2].decode_seconds:.2f}s"
    )


if __name__ == "__main__":
    main()
