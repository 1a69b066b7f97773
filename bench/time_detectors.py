"""Per-image time of object detectors on real photos, side by side, on CPU.

Usage: .venv/bin/python bench/time_detectors.py DATA_FOLDER [--models NAME ...] [--onnx FILE ...]
       [--images 32] [--threads 1 2] [--opt-level all] [--batch-sizes 1 4 8]

Every model (manifest names; --onnx adds extra YOLO26 files, e.g. the QDQ experiment of
onnx_models/rebuild_yolo26.py) gets its own ONNX Runtime session with the service's options (no
spinning, memory pattern off) at each thread count. Models are timed round-robin on the same image
before the next image, so a noisy shared machine slows them alike. Two figures per model: the full
`detect()` (letterbox + run + post-processing) and the session run alone, median and mean per image.

--batch-sizes also times a dynamic-batch cut of the YOLO26 fp32 graph (everything up to the raw
[N, 84, 8400] head, before the end-to-end top-k, whose gathers are written for batch 1): per-image
time at each batch size, to see whether batching would pay on CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.config import Settings, get_settings
from onnx_models.manifest import ModelEntry, load_manifest
from services.inference.objects import ObjectDetector
from services.inference.runtime import OnnxSession

OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
RAW_HEAD = "/model.23/Concat_3_output_0"  # YOLO26n: boxes + class scores before the end-to-end top-k


def detector_for(entry: ModelEntry, path: Path, threads: int, level: str) -> ObjectDetector:
    """The service's session wrapper and detector, CPU only, with this thread count and level."""
    settings = Settings(
        model_dir=path.parent, onnx_intra_op_threads=threads, onnx_providers=["CPUExecutionProvider"]
    )
    detector = ObjectDetector(entry.model_copy(update={"file": path.name}), settings)
    # The same detector on a session built at this optimisation level.
    detector.onnx = OnnxSession(path, settings, OPT_LEVELS[level])
    return detector


def dynamic_batch_cut(fp32_path: Path) -> bytes:
    """The YOLO26 fp32 graph up to RAW_HEAD, with a symbolic batch (constant reshapes get 0 = keep)."""
    import onnx
    from onnx import helper, numpy_helper

    from onnx_models.rebuild_yolo26 import _prune

    model = onnx.load(str(fp32_path))
    nodes = _prune(list(model.graph.node), [RAW_HEAD])
    constants = {init.name: init for init in model.graph.initializer}
    constants |= {node.output[0]: node.attribute[0].t for node in nodes if node.op_type == "Constant"}
    for node in nodes:
        if node.op_type == "Reshape" and node.input[1] in constants:
            shape = numpy_helper.to_array(constants[node.input[1]]).copy()
            if shape.size and shape[0] == 1:
                shape[0] = 0
                constants[node.input[1]].CopyFrom(numpy_helper.from_array(shape, name=node.input[1]))
    used = {name for node in nodes for name in node.input}
    graph = helper.make_graph(
        nodes,
        "yolo26n_raw_dynamic",
        [helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, ["N", 3, "height", "width"])],
        [helper.make_tensor_value_info(RAW_HEAD, onnx.TensorProto.FLOAT, ["N", 84, "anchors"])],
        initializer=[init for init in model.graph.initializer if init.name in used],
    )
    cut = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    onnx.checker.check_model(cut)
    return bytes(cut.SerializeToString())


def summary(samples: list[float]) -> str:
    return f"median {statistics.median(samples):6.1f} ms  mean {statistics.fmean(samples):6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_folder", type=Path)
    parser.add_argument("--models", nargs="*", default=["yolov8n_int8", "yolo26n_int8", "yolo26n_fp32"])
    parser.add_argument("--onnx", nargs="*", type=Path, default=[], help="extra YOLO26-family ONNX files")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--opt-level", nargs="*", choices=sorted(OPT_LEVELS), default=["all"])
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[])
    args = parser.parse_args()

    settings = get_settings()
    manifest = load_manifest()
    images_dir = args.data_folder / "images"
    paths = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    photos: list[Image.Image] = []
    for path in paths[: args.images]:
        with Image.open(path) as im:
            photos.append(ImageOps.exif_transpose(im).convert("RGB"))
    targets: list[tuple[str, ModelEntry, Path]] = [
        (name, manifest.by_name(name), settings.model_dir / manifest.by_name(name).file)
        for name in args.models
    ]
    yolo26 = manifest.by_name("yolo26n_fp32")
    targets += [(path.name, yolo26, path) for path in args.onnx]
    print(f"{len(photos)} photos from {images_dir}; onnxruntime {ort.__version__}, CPUExecutionProvider")

    for level in args.opt_level:
        for threads in args.threads:
            detectors = {name: detector_for(entry, path, threads, level) for name, entry, path in targets}
            full: dict[str, list[float]] = defaultdict(list)
            run_only: dict[str, list[float]] = defaultdict(list)
            for detector in detectors.values():
                detector.detect(photos[:1])  # warm-up, not timed
            for photo in photos:
                for name, detector in detectors.items():
                    started = time.perf_counter()
                    detector.detect([photo], score_threshold=0.05)
                    full[name].append((time.perf_counter() - started) * 1000)
                    tensor, _ = detector._letterbox(photo)
                    started = time.perf_counter()
                    detector.onnx.run({detector.input_name: tensor[None]})
                    run_only[name].append((time.perf_counter() - started) * 1000)
            print(f"\noptimisation {level}, {threads} intra-op thread(s):")
            for name in detectors:
                print(f"  {name:22s} detect() {summary(full[name])}   run alone {summary(run_only[name])}")

    if args.batch_sizes:
        cut = dynamic_batch_cut(settings.model_dir / yolo26.file)
        letterboxer = detector_for(yolo26, settings.model_dir / yolo26.file, 1, "all")
        letterboxer.rect = False  # one canvas size, so the photos stack into batches
        tensors = np.stack([letterboxer._letterbox(photo)[0] for photo in photos])
        print("\nYOLO26n fp32 backbone+head cut with a dynamic batch (raw head, no end-to-end top-k):")
        for threads in args.threads:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(cut, options, providers=["CPUExecutionProvider"])
            line: list[str] = []
            for batch in args.batch_sizes:
                session.run(None, {"images": tensors[:batch]})  # warm-up for this shape
                started = time.perf_counter()
                runs = 0
                for start in range(0, len(tensors) - batch + 1, batch):
                    session.run(None, {"images": tensors[start : start + batch]})
                    runs += batch
                line.append(f"batch {batch}: {(time.perf_counter() - started) * 1000 / runs:6.1f} ms/image")
            print(f"  {threads} thread(s): " + "   ".join(line))


if __name__ == "__main__":
    main()
