"""Model set-up: put every model of the manifest into the model directory, verified.

    python -m onnx_models.setup [--model-dir DIR] [--mirror DIR] [--only NAME[,NAME]] [--verify]

For each manifest entry, by its `obtain` field:
  * "mirror": copy `file` from the mirror directory (default: SHOEBOX_MODEL_MIRROR, else
    <repo>/../shared/models), check its size and sha256. A file already in place whose sha256
    matches is left alone; a corrupt one is replaced from the mirror.
  * "export:<module>": run `<module>.export(model_dir) -> list[Path]` (needs the `export` extra).
    Skipped when the outputs exist and their ONNX signature matches the manifest.
Then every file is verified (sha256 where the manifest has one, else the ONNX input/output
signature), one line per model is printed, and the exit status is 1 if anything is missing or
corrupt, each named with how to fix it. A stamp file (.setup-stamp.json in the model directory)
records what was verified, keyed by file size/mtime/inode, so an unchanged set-up re-runs in well
under a second; --verify ignores it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from onnx_models._export_common import EXPORT_EXTRA_HINT, ExportDependencyMissing
from onnx_models.manifest import Manifest, ModelEntry, TensorSpec, load_manifest

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MIRROR = REPO_ROOT.parent / "shared" / "models"
STAMP_NAME = ".setup-stamp.json"
STAMP_VERSION = 1

# onnxruntime type strings for the manifest's dtype names.
ORT_TYPES = {
    "float32": "tensor(float)",
    "float16": "tensor(float16)",
    "float64": "tensor(double)",
    "int64": "tensor(int64)",
    "int32": "tensor(int32)",
    "int8": "tensor(int8)",
    "uint8": "tensor(uint8)",
    "bool": "tensor(bool)",
}


@dataclass
class FileProblem:
    file: str
    kind: Literal["missing", "corrupt"]
    detail: str
    fix: str

    def describe(self) -> str:
        return f"{self.file} is {self.kind}: {self.detail}\n    fix: {self.fix}"


@dataclass
class ModelReport:
    entry: ModelEntry
    action: str = ""
    problems: list[FileProblem] = field(default_factory=list)
    # file name -> stat + sha256 of a verified file, as stored in the stamp.
    verified: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary_line(self, model_dir: Path) -> str:
        status = "ok" if self.ok else "FAILED"
        size = sum(
            (model_dir / name).stat().st_size for name in self.verified if (model_dir / name).is_file()
        )
        extra = f" +{len(self.entry.extra_files)}" if self.entry.extra_files else ""
        what = f"{self.entry.file}{extra}"
        detail = self.action if self.ok else "; ".join(f"{p.file} {p.kind}" for p in self.problems)
        size_text = f"{size / 1e6:6.1f} MB" if self.ok else "       -"
        return f"[{status:6}] {self.entry.name:24} {self.entry.role:15} {what:38} {size_text}  {detail}"


# ---------------------------------------------------------------- file checks


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def _record(path: Path, sha: str | None = None) -> dict[str, Any]:
    return {**_stat_key(path), "sha256": sha or sha256_of(path)}


def bytes_problem(path: Path, entry: ModelEntry) -> str | None:
    """Why `path` is not the exact file the manifest pins (size, then sha256), or None."""
    if entry.size_bytes is not None and path.stat().st_size != entry.size_bytes:
        return f"size {path.stat().st_size} bytes, manifest says {entry.size_bytes}"
    if entry.sha256 is not None:
        actual = sha256_of(path)
        if actual != entry.sha256:
            return f"sha256 {actual[:16]}..., manifest says {entry.sha256[:16]}..."
    return None


def _spec_problems(kind: str, specs: list[TensorSpec], actual: dict[str, Any], exhaustive: bool) -> list[str]:
    problems: list[str] = []
    for spec in specs:
        node = actual.get(spec.name)
        if node is None:
            problems.append(f"{kind} {spec.name!r} not in model (it has {sorted(actual)})")
            continue
        shape = list(node.shape)
        if len(shape) != len(spec.shape):
            problems.append(f"{kind} {spec.name!r} has rank {len(shape)}, manifest says {spec.shape}")
            continue
        # The manifest's fixed (integer) dims are binding; a named input dim must be free in the file
        # (an older export fixed to one size is made again, e.g. YOLO26n before its free input size).
        for axis, (want, got) in enumerate(zip(spec.shape, shape, strict=True)):
            if isinstance(want, int) and got != want:
                problems.append(f"{kind} {spec.name!r} dim {axis} is {got}, manifest says {want}")
            elif kind == "input" and isinstance(want, str) and isinstance(got, int):
                problems.append(
                    f"{kind} {spec.name!r} dim {axis} is fixed at {got}, manifest says free ({want})"
                )
        want_type = ORT_TYPES.get(spec.dtype)
        if want_type is not None and node.type != want_type:
            problems.append(f"{kind} {spec.name!r} is {node.type}, manifest says {spec.dtype}")
    if exhaustive:
        declared = {spec.name for spec in specs}
        extra = sorted(set(actual) - declared)
        if extra:
            problems.append(f"model has {kind}s the manifest does not declare: {extra}")
    return problems


def onnx_problems(path: Path, entry: ModelEntry | None) -> list[str]:
    """Load with onnxruntime; compare input/output names and fixed dims with the manifest entry.

    With entry=None (an extra .onnx file the manifest gives no signature for) only loading is checked.
    Outputs may be a superset of the manifest's (it lists the ones the service reads); inputs must
    match exactly, since the service has to feed every one of them.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Only the signature is wanted: skip graph optimisation, it is most of the load time.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        return [f"onnxruntime cannot load it ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"]
    if entry is None:
        return []
    inputs = {node.name: node for node in session.get_inputs()}
    outputs = {node.name: node for node in session.get_outputs()}
    return _spec_problems("input", entry.inputs, inputs, exhaustive=True) + _spec_problems(
        "output", entry.outputs, outputs, exhaustive=False
    )


def content_problems(path: Path, entry: ModelEntry) -> list[str]:
    """Problems with a present file: exact bytes where pinned, else a structural check by type."""
    if path.name == entry.file and (entry.sha256 is not None or entry.size_bytes is not None):
        problem = bytes_problem(path, entry)
        if problem is None or entry.sha256_reproducible:
            return [problem] if problem else []
        log.warning("%s: %s (a trained file); checking its ONNX signature instead", path.name, problem)
        return onnx_problems(path, entry)
    if path.suffix == ".onnx":
        return onnx_problems(path, entry if path.name == entry.file else None)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return [f"not valid JSON ({exc})"]
        return [] if data else ["empty JSON document"]
    return [] if path.stat().st_size > 0 else ["empty file"]


# ---------------------------------------------------------------- obtaining


def _entry_files(entry: ModelEntry) -> list[str]:
    return [entry.file, *entry.extra_files]


def _export_module(entry: ModelEntry) -> str | None:
    return entry.obtain.split(":", 1)[1] if entry.obtain.startswith("export:") else None


def _fix_hint(entry: ModelEntry, mirror: Path | None) -> str:
    module = _export_module(entry)
    if module:
        return f"{EXPORT_EXTRA_HINT}, then run python -m onnx_models.setup (or python -m {module} to debug)"
    where = str(mirror) if mirror else "a mirror directory (--mirror DIR or SHOEBOX_MODEL_MIRROR)"
    sha = f" (sha256 {entry.sha256})" if entry.sha256 else ""
    return f"put a verified copy of {entry.file}{sha} from {entry.source} into {where}, then re-run set-up"


def _copy_from_mirror(entry: ModelEntry, model_dir: Path, mirror: Path | None, report: ModelReport) -> None:
    dest = model_dir / entry.file
    present_problem: str | None = None
    if dest.is_file():
        present_problem = bytes_problem(dest, entry)
        if present_problem is None:
            report.action = "already present"
            report.verified[entry.file] = _record(dest, entry.sha256)
            return
        log.warning(
            "%s in %s is corrupt (%s); replacing it from the mirror", entry.file, model_dir, present_problem
        )
    source = mirror / entry.file if mirror else None
    if source is None or not source.is_file():
        where = f"not in the mirror {mirror}" if mirror else "no mirror directory is configured"
        if present_problem:
            report.problems.append(
                FileProblem(entry.file, "corrupt", f"{present_problem}; {where}", _fix_hint(entry, mirror))
            )
        else:
            report.problems.append(FileProblem(entry.file, "missing", f"{where}", _fix_hint(entry, mirror)))
        return
    # Copy (never hard-link): the model dir must not share an inode with the read-only mirror,
    # or an accidental in-place write would damage the mirror too.
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        shutil.copyfile(source, tmp)
        problem = bytes_problem(tmp, entry)
        if problem is not None:
            report.problems.append(
                FileProblem(
                    entry.file,
                    "corrupt",
                    f"the mirror copy {source} has {problem}",
                    f"replace {source} with a good copy ({entry.source}); set-up never installs a bad file",
                )
            )
            return
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    report.action = "replaced corrupt file from mirror" if present_problem else "copied from mirror"
    report.verified[entry.file] = _record(dest, entry.sha256)


def _run_export(entry: ModelEntry, model_dir: Path, report: ModelReport, force: bool) -> None:
    module_name = _export_module(entry)
    assert module_name is not None
    if not force:
        cached = ModelReport(entry)
        _verify_files(entry, model_dir, None, cached)
        if cached.ok:
            report.action, report.verified = "export cached", cached.verified
            return
    started = time.perf_counter()
    failure: str | None = None
    fix = _fix_hint(entry, None)
    try:
        module = importlib.import_module(module_name)
        export = getattr(module, "export", None)
        if not callable(export):
            failure = f"export tool {module_name} has no export(model_dir) function"
            fix = f"implement {module_name}.export(model_dir) -> list[Path]"
        else:
            model_dir.mkdir(parents=True, exist_ok=True)
            export(model_dir)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            failure = f"export tool {module_name} does not exist"
            fix = f"add {module_name.replace('.', '/')}.py with export(model_dir) -> list[Path]"
        else:
            failure = f"export tool {module_name} needs Python package {exc.name!r}, which is not installed"
    except ExportDependencyMissing as exc:
        failure = f"export tool {module_name}: {exc}"
    except Exception as exc:  # any export bug must not stop the other models' set-up
        log.debug("export %s failed", module_name, exc_info=True)
        failure = f"export tool {module_name} failed: {type(exc).__name__}: {exc}"
        fix = (
            f"run python -m {module_name} to see the full error; {EXPORT_EXTRA_HINT} if a package is missing"
        )
    report.seconds = time.perf_counter() - started
    if failure is not None:
        for name in _entry_files(entry):
            if not (model_dir / name).is_file():
                report.problems.append(FileProblem(name, "missing", failure, fix))
        if not report.problems:  # stale outputs are present but the manifest no longer matches them
            report.problems.append(FileProblem(entry.file, "corrupt", failure, fix))
        return
    report.action = f"exported in {report.seconds:.1f} s"
    _verify_files(
        entry,
        model_dir,
        None,
        report,
        fix=f"{module_name} wrote a file that does not match the manifest entry; fix the tool or the entry",
    )


def _verify_files(
    entry: ModelEntry, model_dir: Path, mirror: Path | None, report: ModelReport, fix: str | None = None
) -> None:
    """Check every file of the entry not already reported; record the good ones for the stamp."""
    already = {problem.file for problem in report.problems} | set(report.verified)
    for name in _entry_files(entry):
        if name in already:
            continue
        path = model_dir / name
        if not path.is_file():
            report.problems.append(
                FileProblem(name, "missing", f"not in {model_dir}", fix or _fix_hint(entry, mirror))
            )
            continue
        problems = content_problems(path, entry)
        if problems:
            report.problems.append(
                FileProblem(name, "corrupt", "; ".join(problems), fix or _fix_hint(entry, mirror))
            )
            continue
        sha = entry.sha256 if name == entry.file and entry.sha256 and entry.sha256_reproducible else None
        report.verified[name] = _record(path, sha)


# ---------------------------------------------------------------- stamp


def _entry_digest(entry: ModelEntry) -> str:
    return hashlib.sha256(entry.model_dump_json().encode()).hexdigest()


def _read_stamp(model_dir: Path) -> dict[str, Any]:
    try:
        stamp = json.loads((model_dir / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(stamp, dict) or stamp.get("version") != STAMP_VERSION:
        return {}
    entries = stamp.get("entries")
    return entries if isinstance(entries, dict) else {}


def _stamp_still_valid(entry: ModelEntry, model_dir: Path, stamped: dict[str, Any]) -> dict[str, Any] | None:
    """The stamped file records if this entry and every one of its files are unchanged, else None."""
    if not isinstance(stamped, dict) or stamped.get("digest") != _entry_digest(entry):
        return None
    files: dict[str, Any] = stamped.get("files", {})
    for name in _entry_files(entry):
        record = files.get(name)
        path = model_dir / name
        if not isinstance(record, dict) or not path.is_file():
            return None
        if {key: record.get(key) for key in ("size", "mtime_ns", "ino")} != _stat_key(path):
            return None
    return files


def _write_stamp(model_dir: Path, reports: list[ModelReport], previous: dict[str, Any]) -> None:
    entries = dict(previous)
    for report in reports:
        if report.ok:
            entries[report.entry.name] = {"digest": _entry_digest(report.entry), "files": report.verified}
        else:
            entries.pop(report.entry.name, None)
    path = model_dir / STAMP_NAME
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps({"version": STAMP_VERSION, "entries": entries}, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError as exc:  # e.g. a read-only model dir in an image: only the fast path is lost
        log.warning("cannot write %s (%s); the next set-up will re-verify every file", path, exc)
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- driver


def default_mirror(configured: Path | None) -> Path | None:
    if configured is not None:
        return configured
    return DEFAULT_MIRROR if DEFAULT_MIRROR.is_dir() else None


def run_setup(
    model_dir: Path,
    mirror: Path | None,
    *,
    manifest: Manifest | None = None,
    only: Sequence[str] | None = None,
    full_verify: bool = False,
    force_export: bool = False,
) -> list[ModelReport]:
    """Obtain and verify the models; returns one report per model (nothing raised for bad files)."""
    manifest = manifest or load_manifest()
    entries = manifest.models
    if only:
        unknown = sorted(set(only) - {entry.name for entry in entries})
        if unknown:
            raise KeyError(f"no model named {', '.join(unknown)} in the manifest")
        entries = [entry for entry in entries if entry.name in set(only)]
    model_dir.mkdir(parents=True, exist_ok=True)
    stamp = {} if full_verify or force_export else _read_stamp(model_dir)
    reports: list[ModelReport] = []
    for entry in entries:
        report = ModelReport(entry)
        files = _stamp_still_valid(entry, model_dir, stamp.get(entry.name, {}))
        if files is not None:
            report.action = "unchanged since last set-up"
            report.verified = {name: files[name] for name in _entry_files(entry)}
            reports.append(report)
            continue
        if entry.obtain == "mirror":
            _copy_from_mirror(entry, model_dir, mirror, report)
            _verify_files(entry, model_dir, mirror, report)
        elif _export_module(entry):
            _run_export(entry, model_dir, report, force_export)
        else:
            report.problems.append(
                FileProblem(
                    entry.file, "missing", f"unknown obtain method {entry.obtain!r}", "fix the manifest"
                )
            )
        reports.append(report)
    _write_stamp(model_dir, reports, _read_stamp(model_dir))
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    from core.config import get_settings

    parser = argparse.ArgumentParser(
        prog="python -m onnx_models.setup",
        description="Put the manifest's model files in place and verify them.",
    )
    parser.add_argument(
        "--model-dir", type=Path, help="where the service loads models from (default: settings)"
    )
    parser.add_argument("--mirror", type=Path, help="directory of verified pretrained files to copy from")
    parser.add_argument("--only", action="append", default=[], help="model name(s) to set up (comma list)")
    parser.add_argument("--verify", action="store_true", help="ignore the stamp; re-check every file fully")
    parser.add_argument("--force-export", action="store_true", help="re-run export tools even if cached")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        # The export tools log what they measured (ONNX vs torch difference, time): worth showing.
        logging.getLogger("onnx_models").setLevel(logging.INFO)

    settings = get_settings()
    model_dir: Path = (args.model_dir or settings.model_dir).resolve()
    mirror = default_mirror(args.mirror or settings.model_mirror)
    only = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    started = time.perf_counter()
    try:
        reports = run_setup(
            model_dir, mirror, only=only or None, full_verify=args.verify, force_export=args.force_export
        )
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    print(f"model dir: {model_dir}   mirror: {mirror or '(none)'}")
    for report in reports:
        print(report.summary_line(model_dir))
    failed = [report for report in reports if not report.ok]
    elapsed = time.perf_counter() - started
    if not failed:
        print(f"all {len(reports)} models ready ({elapsed:.1f} s)")
        return 0
    print(f"\n{len(failed)} of {len(reports)} models are not ready:", file=sys.stderr)
    for report in failed:
        for problem in report.problems:
            print(f"  {report.entry.name}: {problem.describe()}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
