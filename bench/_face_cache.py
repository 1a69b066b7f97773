"""Bare face embeddings of a test-data folder, computed once with the repo's own face pipeline and cached.

`load_faces(folder)` runs YuNet + 5-point alignment + both MobileFaceNet embedders (paddlex, the
service's default, and foamliu from ../shared/models, for fusion experiments) over every image of
FOLDER/images listed in FOLDER/ground_truth.json, and keeps one main face per photo. Results are
cached as .npz under $SHOEBOX_FACE_CACHE (default: the repo's git-ignored .export-cache/faces), keyed
by folder and variant, so a research script never computes them twice. Generated data: never committed.

`pad` (a fraction of the image size added as black border on every side) is for tight face crops
such as kin_fiw, where the detector may need context around the face.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]
from PIL import Image, ImageOps

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from core.config import get_settings  # noqa: E402
from services.inference.face_align import align_face  # noqa: E402
from services.inference.models import ModelSet  # noqa: E402

CACHE_DIR = Path(
    os.environ.get("SHOEBOX_FACE_CACHE", Path(__file__).resolve().parent.parent / ".export-cache" / "faces")
)
FOAMLIU_FILE = Path(
    os.environ.get(
        "SHOEBOX_FOAMLIU_MODEL", str(REPO_ROOT.parent / "shared" / "models" / "mobilefacenet_foamliu.onnx")
    )
)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass
class FaceSet:
    """One main face per photo (photos where no face was found have found=False and zero vectors)."""

    files: list[str]
    labels: list[str]  # ground-truth identity of each photo (for kin_fiw: "Fxxxx/MIDy")
    found: np.ndarray  # [N] bool
    paddlex: np.ndarray  # [N, 128] unit vectors (flip TTA, as the service embeds)
    foamliu: np.ndarray  # [N, 128] unit vectors (flip TTA)
    size_px: np.ndarray  # [N] short side of the face box in pixels
    recognisable: np.ndarray  # [N] bool, the service's quality flag
    seconds: float

    def subset(self, mask: np.ndarray) -> FaceSet:
        idx = np.flatnonzero(mask)
        return FaceSet(
            [self.files[i] for i in idx],
            [self.labels[i] for i in idx],
            self.found[idx],
            self.paddlex[idx],
            self.foamliu[idx],
            self.size_px[idx],
            self.recognisable[idx],
            self.seconds,
        )


class FoamliuEmbedder:
    """mobilefacenet_foamliu.onnx (MODELS.md section 4): RGB, /255, ImageNet mean/std, batch 1."""

    def __init__(self, path: Path = FOAMLIU_FILE) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def _one(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: x[None]})[0][0]
        return np.asarray(out, dtype=np.float32)

    def embed(self, crops: list[Image.Image]) -> np.ndarray:
        rows = []
        for crop in crops:
            arr = (np.asarray(crop.convert("RGB"), dtype=np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
            x = np.ascontiguousarray(arr.transpose(2, 0, 1))
            v = self._one(x) + self._one(np.ascontiguousarray(x[..., ::-1]))
            rows.append(v / max(float(np.linalg.norm(v)), 1e-12))
        return np.stack(rows) if rows else np.zeros((0, 128), dtype=np.float32)


def _pad(image: Image.Image, fraction: float) -> Image.Image:
    if fraction <= 0:
        return image
    w, h = image.size
    px, py = round(w * fraction), round(h * fraction)
    canvas = Image.new("RGB", (w + 2 * px, h + 2 * py))
    canvas.paste(image, (px, py))
    return canvas


def _main_face(boxes: list[list[float]]) -> int:
    """The face whose box holds the image centre (LFW, crops: the labelled face is centred), largest
    first; otherwise the largest face."""
    areas = [b[2] * b[3] for b in boxes]
    central = [i for i, b in enumerate(boxes) if b[0] <= 0.5 <= b[0] + b[2] and b[1] <= 0.5 <= b[1] + b[3]]
    pool = central or list(range(len(boxes)))
    return max(pool, key=lambda i: areas[i])


def _cache_path(folder: Path, pad: float) -> Path:
    return CACHE_DIR / f"{folder.resolve().name}_pad{pad:g}.npz"


def load_faces(folder: Path, pad: float = 0.0, verbose: bool = True) -> FaceSet:
    truth: dict[str, str] = json.loads((folder / "ground_truth.json").read_text())
    files = sorted(truth)
    path = _cache_path(folder, pad)
    if path.is_file():
        data = np.load(path, allow_pickle=False)
        if list(data["files"]) == files:
            return FaceSet(
                files,
                [truth[f] for f in files],
                data["found"],
                data["paddlex"],
                data["foamliu"],
                data["size_px"],
                data["recognisable"],
                float(data["seconds"]),
            )
    # The service's own face pipeline (default detector, embedder with flip TTA), one ONNX thread.
    analyzer = ModelSet(get_settings().model_copy(update={"onnx_intra_op_threads": 1})).faces
    foamliu = FoamliuEmbedder()
    n = len(files)
    found = np.zeros(n, dtype=bool)
    paddlex = np.zeros((n, 128), dtype=np.float32)
    foam = np.zeros((n, 128), dtype=np.float32)
    size_px = np.zeros(n, dtype=np.float32)
    recognisable = np.zeros(n, dtype=bool)
    started = time.perf_counter()
    for i, name in enumerate(files):
        with Image.open(folder / "images" / name) as raw:
            image = _pad(ImageOps.exif_transpose(raw).convert("RGB"), pad)
        faces = analyzer.analyze([image], keep_aligned=True)[0]
        if faces:
            j = _main_face([f.detection.box for f in faces])
            face = faces[j]
            found[i] = True
            paddlex[i] = face.embedding
            crop = face.aligned or align_face(image, face.detection.landmarks_px())[0]
            foam[i] = foamliu.embed([crop])[0]
            size_px[i] = face.quality.size_px
            recognisable[i] = face.quality.recognisable
        if verbose and (i + 1) % 500 == 0:
            print(f"[cache] {folder.name}: {i + 1}/{n} in {time.perf_counter() - started:.0f} s", flush=True)
    seconds = time.perf_counter() - started
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        files=np.array(files),
        found=found,
        paddlex=paddlex,
        foamliu=foam,
        size_px=size_px,
        recognisable=recognisable,
        seconds=seconds,
    )
    tmp.replace(path)
    return FaceSet(files, [truth[f] for f in files], found, paddlex, foam, size_px, recognisable, seconds)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        folder_arg, _, pad_arg = arg.partition(":")
        faces = load_faces(Path(folder_arg), float(pad_arg or 0))
        print(
            f"{folder_arg} pad {pad_arg or 0}: {faces.found.mean():.4f} found, "
            f"{len(faces.files)} photos, {faces.seconds:.0f} s"
        )
