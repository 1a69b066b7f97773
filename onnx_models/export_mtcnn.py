"""Export MTCNN's P-, R- and O-nets to ONNX from the weights bundled in the facenet-pytorch wheel.

Export-time only: needs torch (`pip install torch==2.13.0`) and
`pip install --no-deps facenet-pytorch==2.6.0`.
The facenet_pytorch module itself is never imported: it imports torchvision, which has no CPU
build here. Only its data files (`facenet_pytorch/data/{pnet,rnet,onet}.pt`, plain state dicts) are
read, into network definitions written out below with the same layer names.

Usage: python -m onnx_models.export_mtcnn MODEL_DIR
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PACKAGE = "facenet_pytorch"
OPSET = 17
FILES = {"pnet": "mtcnn_pnet.onnx", "rnet": "mtcnn_rnet.onnx", "onet": "mtcnn_onet.onnx"}
# Largest |onnx - torch| accepted by the verification step (float32 round-off is ~1e-6).
TOLERANCE = 1e-4


def weights_dir() -> Path:
    """facenet_pytorch/data inside the installed package, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{PACKAGE} is not installed; run `pip install --no-deps facenet-pytorch==2.6.0` "
            "(export time only)"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    missing = [n for n in FILES if not (data / f"{n}.pt").is_file()]
    if missing:
        raise FileNotFoundError(f"{data} lacks {', '.join(m + '.pt' for m in missing)}")
    return data


def _build_networks() -> dict[str, Any]:
    """P/R/O-Net definitions matching facenet-pytorch's state-dict keys (torch imported lazily)."""
    from torch import nn

    class PNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
            self.prelu1 = nn.PReLU(10)
            self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
            self.prelu2 = nn.PReLU(16)
            self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
            self.prelu3 = nn.PReLU(32)
            self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
            self.softmax4_1 = nn.Softmax(dim=1)
            self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

        def forward(self, x):  # type: ignore[no-untyped-def]
            x = self.prelu1(self.conv1(x))
            x = self.pool1(x)
            x = self.prelu2(self.conv2(x))
            x = self.prelu3(self.conv3(x))
            return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))

    class RNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
            self.prelu1 = nn.PReLU(28)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
            self.prelu2 = nn.PReLU(48)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
            self.prelu3 = nn.PReLU(64)
            self.dense4 = nn.Linear(576, 128)
            self.prelu4 = nn.PReLU(128)
            self.dense5_1 = nn.Linear(128, 2)
            self.softmax5_1 = nn.Softmax(dim=1)
            self.dense5_2 = nn.Linear(128, 4)

        def forward(self, x):  # type: ignore[no-untyped-def]
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.prelu3(self.conv3(x))
            # The weights come from the Caffe model, whose dense layers read the feature map transposed.
            x = x.permute(0, 3, 2, 1).contiguous()
            x = self.prelu4(self.dense4(x.flatten(1)))
            return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))

    class ONet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
            self.prelu1 = nn.PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
            self.prelu2 = nn.PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
            self.prelu3 = nn.PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
            self.prelu4 = nn.PReLU(128)
            self.dense5 = nn.Linear(1152, 256)
            self.prelu5 = nn.PReLU(256)
            self.dense6_1 = nn.Linear(256, 2)
            self.softmax6_1 = nn.Softmax(dim=1)
            self.dense6_2 = nn.Linear(256, 4)
            self.dense6_3 = nn.Linear(256, 10)

        def forward(self, x):  # type: ignore[no-untyped-def]
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x))
            x = x.permute(0, 3, 2, 1).contiguous()
            x = self.prelu5(self.dense5(x.flatten(1)))
            return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))

    return {"pnet": PNet, "rnet": RNet, "onet": ONet}


# name -> (example input size, output names, dynamic axes beyond the batch)
_SIGNATURES: dict[str, tuple[tuple[int, int], list[str], dict[int, str]]] = {
    "pnet": ((60, 80), ["regression", "probability"], {2: "H", 3: "W"}),
    "rnet": ((24, 24), ["regression", "probability"], {}),
    "onet": ((48, 48), ["regression", "landmarks", "probability"], {}),
}


def load_torch_networks() -> dict[str, Any]:
    """The three networks in eval mode with the bundled weights loaded."""
    import torch

    data = weights_dir()
    nets = {}
    for name, cls in _build_networks().items():
        net = cls()
        net.load_state_dict(torch.load(data / f"{name}.pt", map_location="cpu", weights_only=True))
        nets[name] = net.eval()
    return nets


def _verify(path: Path, net: Any, shapes: list[tuple[int, int, int]]) -> float:
    """Largest absolute difference between ONNX Runtime and torch over random inputs of `shapes`."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for n, h, w in shapes:
        x = rng.uniform(-1.0, 1.0, size=(n, 3, h, w)).astype(np.float32)
        with torch.no_grad():
            expected = [t.numpy() for t in net(torch.from_numpy(x))]
        got = session.run(None, {"input": x})
        for e, g in zip(expected, got, strict=True):
            if e.shape != g.shape:
                raise RuntimeError(f"{path.name}: shape {g.shape} from ONNX, {e.shape} from torch")
            worst = max(worst, float(np.abs(e - g).max()))
    return worst


def export(model_dir: Path) -> list[Path]:
    """Write mtcnn_{pnet,rnet,onet}.onnx into model_dir, each checked against torch; returns the paths."""
    import torch

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, net in load_torch_networks().items():
        (h, w), output_names, spatial = _SIGNATURES[name]
        path = model_dir / FILES[name]
        tmp = path.with_suffix(".onnx.tmp")
        dynamic_axes: dict[str, dict[int, str]] = {"input": {0: "N", **spatial}}
        for out in output_names:
            # P-net outputs are maps whose size follows the input's; R/O-net outputs are vectors.
            dynamic_axes[out] = {0: "N", **({2: "h", 3: "w"} if spatial else {})}
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter is deprecated but is the one that needs no onnxscript.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                net,
                (torch.zeros(1, 3, h, w),),
                str(tmp),
                input_names=["input"],
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=OPSET,
                dynamo=False,
            )
        # Odd sizes exercise ceil-mode pooling, the usual place an export diverges.
        shapes = [(1, h, w), (3, h, w)] + ([(2, 37, 51), (1, 12, 12), (1, 125, 97)] if spatial else [])
        diff = _verify(tmp, net, shapes)
        if diff > TOLERANCE:
            tmp.unlink()
            raise RuntimeError(f"{path.name}: ONNX differs from torch by {diff:.2e} (> {TOLERANCE})")
        tmp.replace(path)  # only a verified file takes the real name
        log.info("exported %s (max |onnx - torch| = %.1e)", path, diff)
        written.append(path)
    return written


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "models"
    for p in export(target):
        log.info("%s %d bytes", p, p.stat().st_size)
