"""Train the text-image alignment head (LiT-style) on the Flickr8k training captions, export it to ONNX.

Both encoders stay frozen: EfficientNet-Lite0's pooled 1280-d embedding of the photo squashed to
224x224 (the training photos were squashed that way by their source, so serving squashes too) and
all-MiniLM-L6-v2's sentence embedding of the caption. Only a small head is trained: a 2-layer MLP
from the image embedding into the MiniLM space, with symmetric InfoNCE over caption-photo pairs
(Zhai et al. 2022, "LiT: zero-shot transfer with locked-image text tuning", here with the text tower
locked as well). Query sentences are already MiniLM vectors at search time, so the cosine of a
query with a photo's head output ranks photos by what a caption of them would say.

A held-apart validation split of the training photos (by a hash of the file name) picks the epoch
(early stopping) and every other choice; the product's caption set (testdata/captions) is never read.
Validation recall is measured like the product bar: each caption against random galleries of 100
photos, and against the whole validation split.

Features are cached under <repo>/.export-cache/text_alignment/ (keyed by the exact model files and
data), so a re-run takes seconds; the first run embeds 7,891 photos and 39,455 captions (a few
minutes on 2 cores). Training is seeded and runs on one thread, so a re-run on the same machine gives
the same bytes; another CPU may differ in the last bits (set-up verifies the file by signature then).

    python -m onnx_models.train_text_alignment [--model-dir DIR] [--data DIR] [--report DIR]

Outputs: `text_alignment_head.onnx` (input `image_embedding` float32 [N,1280], output
`text_space` float32 [N,384], unit vectors), and with --report a training report (JSON + loss and
recall curves as PNG when matplotlib is installed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from onnx_models._export_common import (
    OPSET,
    ExportError,
    atomic_output,
    cached_photo_features,
    check_close,
    quiet_export,
    require_modules,
)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_NAME = "text_alignment_head"
HEAD_FILE = "text_alignment_head.onnx"
DEFAULT_DATA = Path(
    os.environ.get("SHOEBOX_TEXT_ALIGNMENT_DATA", REPO_ROOT.parent / "shared" / "testdata" / "flickr8k_train")
)
CACHE_DIR = REPO_ROOT / ".export-cache" / "text_alignment"
INPUT_NAME = "image_embedding"
OUTPUT_NAME = "text_space"
IMAGE_DIM = 1280
TEXT_DIM = 384
# Same bound the search query path uses for its sentence (services/search/query.py MAX_QUERY_WORDS).
MAX_CAPTION_WORDS = 32
# Share of the training photos held apart for validation (early stopping and every choice).
VALIDATION_SHARE = 0.12
# The product measures recall over a library of 100 photos; validation does the same on random
# galleries of that size drawn from the validation photos.
GALLERY_SIZE = 100
GALLERIES = 30
SEED = 13


@dataclass(frozen=True)
class HeadConfig:
    """The trained head and its training recipe (chosen on the validation split, see the report)."""

    hidden: int = 1024
    dropout: float = 0.3
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    batch_size: int = 512
    max_epochs: int = 80
    patience: int = 12
    initial_temperature: float = 0.07
    # Captions per photo seen per epoch (each a fresh random pick of its 5).
    captions_per_epoch: int = 1
    seed: int = SEED


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    temperature: float
    gallery_recall: dict[str, float]
    split_recall: dict[str, float]


@dataclass
class TrainingResult:
    config: HeadConfig
    best_epoch: int
    epochs: list[EpochRecord] = field(default_factory=list)
    train_photos: int = 0
    val_photos: int = 0
    seconds: float = 0.0


# ---------------------------------------------------------------- data and features


def caption_text(caption: str) -> str:
    """A caption as the search embeds a query: folded words, punctuation gone, at most 32 words."""
    from services.search.text import words

    return " ".join(words(caption)[:MAX_CAPTION_WORDS])


def load_captions(data_dir: Path) -> dict[str, list[str]]:
    truth_path = data_dir / "ground_truth.json"
    if not truth_path.is_file():
        raise ExportError(f"{truth_path} is missing: the Flickr8k training captions are needed")
    truth: dict[str, list[str]] = json.loads(truth_path.read_text(encoding="utf-8"))
    present = {
        name: captions for name, captions in sorted(truth.items()) if (data_dir / "images" / name).is_file()
    }
    if len(present) < 1000:
        raise ExportError(f"only {len(present)} captioned photos found under {data_dir / 'images'}")
    return present


def is_validation(name: str) -> bool:
    """Held-apart photos by a hash of the file name: stable whatever else is added or removed."""
    digest = hashlib.sha256(f"text-alignment-split:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < VALIDATION_SHARE * 2**32


def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def _cache_path(kind: str, parts: Sequence[str]) -> Path:
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]
    return CACHE_DIR / f"{kind}-{digest}.npy"


def _settings(model_dir: Path, threads: int) -> Any:
    from core.config import Settings

    return Settings(model_dir=model_dir, onnx_intra_op_threads=threads)


def squashed_labeler(model_dir: Path, threads: int) -> Any:
    """The service's ImageLabeler with the squash-to-224 resize the alignment head is trained on."""
    from onnx_models.manifest import load_manifest
    from services.inference.labels import ImageLabeler

    base = load_manifest().default_for("labels")
    entry = base.model_copy(update={"preprocessing": {**base.preprocessing, "resize": "stretch"}})
    return ImageLabeler(entry, _settings(model_dir, threads))


def image_features(names: list[str], images_dir: Path, model_dir: Path, threads: int) -> np.ndarray:
    """[N, 1280] unit EfficientNet-Lite0 embeddings of the squashed photos (cached)."""
    labeler = squashed_labeler(model_dir, threads)
    key = [
        "image-v1",
        _file_key(model_dir / labeler.entry.file),
        json.dumps(labeler.entry.preprocessing, sort_keys=True),
        *names,
    ]
    cached = _cache_path("images", key)
    return cached_photo_features(
        cached,
        [images_dir / name for name in names],
        lambda images: np.stack([result.embedding for result in labeler.predict(images, top_k=1)]),
        "image features",
    )


def text_features(texts: list[str], model_dir: Path, threads: int) -> np.ndarray:
    """[N, 384] unit MiniLM sentence embeddings (cached)."""
    from onnx_models.manifest import load_manifest
    from services.inference.text import TextEmbedder

    entry = load_manifest().default_for("text")
    key = ["text-v1", _file_key(model_dir / entry.file), *texts]
    cached = _cache_path("texts", key)
    if cached.is_file():
        return np.asarray(np.load(cached), dtype=np.float32)
    embedder = TextEmbedder(entry=entry, settings=_settings(model_dir, threads))
    started = time.perf_counter()
    # Sorted by length so each batch pads little; results go back to the callers' order.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), TEXT_DIM), dtype=np.float32)
    batch = 128
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        out[rows] = embedder.embed([texts[i] for i in rows])
        if (start // batch) % 50 == 0:
            log.info(
                "caption features: %d/%d (%.0f s)",
                start + len(rows),
                len(texts),
                time.perf_counter() - started,
            )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with atomic_output(cached) as tmp, tmp.open("wb") as fh:
        np.save(fh, out)
    log.info("caption features of %d captions in %.0f s", len(texts), time.perf_counter() - started)
    return out


@dataclass
class Dataset:
    names: list[str]
    images: np.ndarray  # [P, 1280]
    captions: np.ndarray  # [P, 5, 384]
    validation: np.ndarray  # [P] bool


def load_dataset(data_dir: Path, model_dir: Path, threads: int) -> Dataset:
    captions = load_captions(data_dir)
    # Photos with other than 5 captions are rare in Flickr8k; keep exactly 5 (repeat the last).
    names = sorted(captions)
    texts = [caption_text(c) for name in names for c in (captions[name] * 5)[:5]]
    image_matrix = image_features(names, data_dir / "images", model_dir, threads)
    text_matrix = text_features(texts, model_dir, threads).reshape(len(names), 5, TEXT_DIM)
    validation = np.array([is_validation(name) for name in names])
    return Dataset(names, image_matrix, text_matrix, validation)


# ---------------------------------------------------------------- evaluation


def recall_at(ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Share of queries whose photo is within the top k (ranks are 1-based)."""
    out = {f"r@{k}": float(np.mean(ranks <= k)) for k in ks}
    out["mrr@10"] = float(np.mean(np.where(ranks <= 10, 1.0 / ranks, 0.0)))
    return out


def caption_ranks(photo_vectors: np.ndarray, caption_vectors: np.ndarray) -> np.ndarray:
    """Rank (1-based) of each caption's own photo among the given photos; captions [P, C, D]."""
    photos, per_photo, dim = caption_vectors.shape
    queries = caption_vectors.reshape(-1, dim)
    scores = queries @ photo_vectors.T  # [P*C, P]
    own = np.repeat(np.arange(photos), per_photo)
    own_score = scores[np.arange(scores.shape[0]), own]
    return np.asarray(1 + np.sum(scores > own_score[:, None], axis=1))


def gallery_recall(
    photo_vectors: np.ndarray, caption_vectors: np.ndarray, galleries: int = GALLERIES, seed: int = SEED
) -> dict[str, float]:
    """Mean recall over random galleries of GALLERY_SIZE photos (the product's library size)."""
    rng = np.random.default_rng(seed)
    count = photo_vectors.shape[0]
    ranks = []
    for _ in range(galleries):
        pick = rng.choice(count, size=min(GALLERY_SIZE, count), replace=False)
        ranks.append(caption_ranks(photo_vectors[pick], caption_vectors[pick]))
    return recall_at(np.concatenate(ranks))


# ---------------------------------------------------------------- training


def _build_head(config: HeadConfig, mean: np.ndarray, scale: np.ndarray) -> Any:
    import torch
    from torch import nn

    class AlignmentHead(nn.Module):
        """Standardise the image embedding, 2-layer MLP (plus a linear shortcut), unit output."""

        mean: torch.Tensor
        scale: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.from_numpy(mean.astype(np.float32)))
            self.register_buffer("scale", torch.from_numpy(scale.astype(np.float32)))
            # hidden == 0: the linear map alone (a recipe the sweep compares).
            self.mlp = (
                nn.Sequential(
                    nn.Linear(IMAGE_DIM, config.hidden),
                    nn.GELU(),
                    nn.Dropout(config.dropout),
                    nn.Linear(config.hidden, TEXT_DIM),
                )
                if config.hidden
                else None
            )
            self.shortcut = nn.Linear(IMAGE_DIM, TEXT_DIM, bias=False)

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            x = (features - self.mean) * self.scale
            y = self.shortcut(x) if self.mlp is None else self.mlp(x) + self.shortcut(x)
            unit: torch.Tensor = y / torch.clamp(torch.linalg.vector_norm(y, dim=1, keepdim=True), min=1e-12)
            return unit

    return AlignmentHead()


def _embed_photos(head: Any, features: np.ndarray) -> np.ndarray:
    import torch

    head.eval()
    with torch.no_grad():
        return np.asarray(head(torch.from_numpy(features)).numpy())


def train_head(data: Dataset, config: HeadConfig) -> tuple[Any, TrainingResult]:
    """Train on the training photos; keep the epoch with the best validation gallery recall."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: deterministic reductions, and leaves the other core alone
    try:
        started = time.perf_counter()
        train_rows = np.flatnonzero(~data.validation)
        val_rows = np.flatnonzero(data.validation)
        train_x = data.images[train_rows]
        mean = train_x.mean(axis=0)
        scale = 1.0 / (train_x.std(axis=0) + 1e-3)
        head = _build_head(config, mean, scale)
        log_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / config.initial_temperature)))
        optimiser = torch.optim.AdamW(
            [*head.parameters(), log_scale], lr=config.learning_rate, weight_decay=config.weight_decay
        )
        steps_per_epoch = math.ceil(len(train_rows) * config.captions_per_epoch / config.batch_size)
        total_steps = steps_per_epoch * config.max_epochs
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
        )
        images_t = torch.from_numpy(data.images)
        captions_t = torch.from_numpy(data.captions)
        rng = np.random.default_rng(config.seed)
        result = TrainingResult(config, best_epoch=0, train_photos=len(train_rows), val_photos=len(val_rows))
        best_score = -1.0
        best_state: dict[str, Any] = {}
        val_captions = data.captions[val_rows]
        for epoch in range(1, config.max_epochs + 1):
            head.train()
            losses = []
            order = np.concatenate([rng.permutation(train_rows) for _ in range(config.captions_per_epoch)])
            picks = rng.integers(0, 5, size=order.size)
            for start in range(0, order.size, config.batch_size):
                rows = order[start : start + config.batch_size]
                if rows.size < 2:
                    continue
                # One caption per photo; a photo twice in a batch (captions_per_epoch > 1) would be a
                # false negative, so keep its first occurrence only.
                rows, first = np.unique(rows, return_index=True)
                chosen = picks[start : start + config.batch_size][first]
                rows_t = torch.from_numpy(rows)
                photo = head(images_t[rows_t])
                text = captions_t[rows_t, torch.from_numpy(chosen)]
                logits = log_scale.clamp(max=math.log(100.0)).exp() * photo @ text.T
                target = torch.arange(rows.size)
                loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
                optimiser.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimiser.step()
                schedule.step()
                losses.append(float(loss.detach()))
            val_photos = _embed_photos(head, data.images[val_rows])
            temperature = float(1.0 / log_scale.detach().clamp(max=math.log(100.0)).exp())
            record = EpochRecord(
                epoch=epoch,
                train_loss=float(np.mean(losses)),
                val_loss=_validation_loss(val_photos, val_captions, temperature),
                temperature=temperature,
                gallery_recall=gallery_recall(val_photos, val_captions),
                split_recall=recall_at(caption_ranks(val_photos, val_captions)),
            )
            result.epochs.append(record)
            score = record.gallery_recall["r@10"] + record.gallery_recall["r@1"]
            log.info(
                "epoch %3d loss %.3f val %.3f  val@100 R@1 %.3f R@5 %.3f R@10 %.3f  (val@%d R@10 %.3f)",
                epoch,
                record.train_loss,
                record.val_loss,
                record.gallery_recall["r@1"],
                record.gallery_recall["r@5"],
                record.gallery_recall["r@10"],
                len(val_rows),
                record.split_recall["r@10"],
            )
            if score > best_score:
                best_score = score
                result.best_epoch = epoch
                best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
            elif epoch - result.best_epoch >= config.patience:
                break
        head.load_state_dict(best_state)
        head.eval()
        result.seconds = time.perf_counter() - started
        return head, result
    finally:
        torch.set_num_threads(threads)


def _validation_loss(photos: np.ndarray, captions: np.ndarray, temperature: float) -> float:
    """Symmetric InfoNCE over the validation split, each photo with its first caption."""
    logits = photos @ captions[:, 0].T / temperature
    logits = logits - logits.max()
    rows = np.log(np.exp(logits).sum(axis=1)) - np.diag(logits)
    cols = np.log(np.exp(logits).sum(axis=0)) - np.diag(logits)
    return float((rows.mean() + cols.mean()) / 2)


# ---------------------------------------------------------------- export


def export_head(head: Any, path: Path, sample: np.ndarray) -> float:
    """Write the head as ONNX (dynamic batch); returns max |onnx - torch| on `sample`."""
    import onnxruntime as ort
    import torch

    with atomic_output(path) as tmp, quiet_export():
        torch.onnx.export(
            head,
            (torch.from_numpy(sample[:2]),),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}},
        )
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: sample})
        with torch.no_grad():
            want = head(torch.from_numpy(sample)).numpy()
        return check_close(OUTPUT_NAME, got, want, atol=1e-4)


def write_report(result: TrainingResult, report_dir: Path) -> list[Path]:
    """The training record as JSON, and loss/recall curves as PNG when matplotlib is installed."""
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path = report_dir / "text_alignment_training.json"
    json_path.write_text(json.dumps(asdict(result), indent=1) + "\n", encoding="utf-8")
    written = [json_path]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install -e '.[bench]'): no PNG curves")
        return written
    epochs = [r.epoch for r in result.epochs]
    figure, (loss_axis, recall_axis) = plt.subplots(1, 2, figsize=(11, 4))
    loss_axis.plot(
        epochs, [r.train_loss for r in result.epochs], label=f"train (batch {result.config.batch_size})"
    )
    loss_axis.plot(
        epochs, [r.val_loss for r in result.epochs], label=f"validation ({result.val_photos} photos)"
    )
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("symmetric InfoNCE")
    loss_axis.legend()
    for k in ("r@1", "r@5", "r@10"):
        recall_axis.plot(epochs, [r.gallery_recall[k] for r in result.epochs], label=f"{k}, galleries of 100")
    recall_axis.plot(
        epochs, [r.split_recall["r@10"] for r in result.epochs], "--", label=f"r@10, all {result.val_photos}"
    )
    recall_axis.axvline(result.best_epoch, color="grey", linewidth=0.8)
    recall_axis.set_xlabel("epoch")
    recall_axis.set_ylabel("validation caption -> photo recall")
    recall_axis.set_ylim(0, 1)
    recall_axis.legend(fontsize=8)
    figure.tight_layout()
    png_path = report_dir / "text_alignment_training.png"
    figure.savefig(png_path, dpi=110)
    plt.close(figure)
    written.append(png_path)
    return written


def train_and_export(
    model_dir: Path,
    data_dir: Path = DEFAULT_DATA,
    config: HeadConfig | None = None,
    report_dir: Path | None = None,
    threads: int = 0,
) -> tuple[Path, TrainingResult]:
    require_modules("torch", "onnx", "onnxruntime")
    model_dir = Path(model_dir)
    data = load_dataset(Path(data_dir), model_dir, threads)
    head, result = train_head(data, config or HeadConfig())
    path = model_dir / HEAD_FILE
    diff = export_head(head, path, data.images[data.validation][:64])
    best = result.epochs[result.best_epoch - 1]
    log.info(
        "trained %s in %.0f s: best epoch %d, validation galleries of 100: R@1 %.3f R@5 %.3f R@10 %.3f; "
        "max |onnx - torch| %.2g",
        path.name,
        result.seconds,
        result.best_epoch,
        best.gallery_recall["r@1"],
        best.gallery_recall["r@5"],
        best.gallery_recall["r@10"],
        diff,
    )
    if report_dir is not None:
        for written in write_report(result, report_dir):
            log.info("wrote %s", written)
    return path, result


def export(model_dir: Path) -> list[Path]:
    """Set-up entry point (onnx_models.setup): train and write the head into model_dir."""
    path, _ = train_and_export(model_dir)
    return [path]


def main(argv: Sequence[str] | None = None) -> int:
    from core.config import get_settings

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=None, help="default: SHOEBOX_MODEL_DIR / settings")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Flickr8k training folder")
    parser.add_argument("--report", type=Path, default=None, help="write the training report here")
    parser.add_argument("--threads", type=int, default=0, help="ONNX threads for the features (0: half)")
    parser.add_argument("--features-only", action="store_true", help="compute and cache the features, stop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model_dir = args.model_dir or get_settings().model_dir
    try:
        if args.features_only:
            data = load_dataset(args.data, model_dir, args.threads)
            print(f"{len(data.names)} photos, {int(data.validation.sum())} held apart for validation")
            return 0
        path, _ = train_and_export(model_dir, args.data, report_dir=args.report, threads=args.threads)
    except ExportError as exc:
        print(f"training failed: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
