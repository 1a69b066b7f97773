"""Rebuild Ultralytics YOLO26n from its dynamically quantised int8 ONNX file as a plain fp32 graph.

    python -m onnx_models.rebuild_yolo26 [--model-dir DIR] [--qdq CALIBRATION_FOLDER [--qdq-images 32]]

`yolo26n_int8.onnx` (see ../shared/models/MODELS.md section 7) went through
`onnxruntime.quantization.quantize_dynamic`: every Conv became

    DynamicQuantizeLinear(x) -> ConvInteger(x_q, W_q, x_zp, W_zp) -> Cast
        -> Mul(x_scale * W_scale) -> Add(bias)

with int8 weights and one scale per weight tensor. Quantising the activations at run time is what
makes it 2-3x slower than an fp32 graph on CPU, and ConvInteger has no CUDA kernel. This tool turns
each such chain back into one float `Conv(x, (W_q - W_zp) * W_scale, bias)`: the weights stay exactly
the int8 grid values (nothing is invented), only the activation quantisation is dropped, so outputs
differ from the int8 graph by that quantisation noise only (tests/inference compares them on real
photos). Everything else (attention, the end-to-end top-k head) is kept as it is.

The exported graph is fixed to a 640 x 640 input: its anchor points and strides (8400 of them) and
the two attention blocks' reshapes are constants for that size. The rebuild computes them from the
feature maps' shapes instead (`free_input_size`), so the graph takes any height and width that are
multiples of 32 and the detector can letterbox a 4:3 photo to 640 x 480 instead of 640 x 640, as
Ultralytics' own rectangular inference does: a quarter less work for the same detections (at 640 x 640
the outputs are bit-identical to the fixed graph's; tests/inference/test_yolo26.py).

The result is deterministic (same input file, same onnx version -> same bytes), has the int8 file's
signature with a free height and width (`images` [1,3,height,width] -> `output0` [1,300,6]) and keeps
its metadata (names, stride, licence), marked with what was done.

Measured alternatives (bench/reports/tagging.md): a statically quantised QDQ graph made from the fp32
one (`--qdq CALIBRATION_FOLDER`, calibrated on real photos; not part of set-up) was slower on CPU and
lost mAP50, and a dynamic batch gave no CPU gain, so set-up installs the fp32 graph only.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from onnx_models._export_common import ExportError, atomic_output, export_cli, require_modules

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

SOURCE_FILE = "yolo26n_int8.onnx"
SOURCE_SHA256 = "912af18b308425e7214fb2ea198261a8a336522579c55c8422d5e40dca1c2a5d"
OUTPUT_FILE = "yolo26n_fp32.onnx"
QDQ_FILE = "yolo26n_qdq.onnx"
EXPECTED_CONVS = 102
REPO_ROOT = Path(__file__).resolve().parent.parent


class _Graph:
    """Producer/consumer indexes over a graph's nodes and initializers."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.initializers = {init.name: init for init in graph.initializer}
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in graph.node:
            for name in node.input:
                self.consumers[name].append(node)

    def only_consumer(self, tensor: str, op_type: str) -> onnx.NodeProto:
        users = self.consumers.get(tensor, [])
        if len(users) != 1 or users[0].op_type != op_type:
            found = [u.op_type for u in users]
            raise ExportError(f"{tensor}: expected one {op_type} consumer, found {found}")
        return users[0]

    def constant(self, name: str) -> np.ndarray:
        """The value of an initializer or of a Constant node's output."""
        from onnx import numpy_helper

        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            return numpy_helper.to_array(node.attribute[0].t)
        raise ExportError(f"{name} is not a constant")


def _float_conv(
    graph: _Graph, conv: onnx.NodeProto
) -> tuple[onnx.NodeProto, list[onnx.TensorProto], set[str]]:
    """One ConvInteger chain -> (float Conv node, its weight and bias initializers, replaced node names)."""
    from onnx import helper, numpy_helper

    x_quantized, w_quantized = conv.input[0], conv.input[1]
    w_zero_point = graph.constant(conv.input[3]) if len(conv.input) > 3 and conv.input[3] else np.int8(0)
    quantize = graph.producer.get(x_quantized)
    if quantize is None or quantize.op_type != "DynamicQuantizeLinear":
        raise ExportError(f"{conv.name}: input is not a DynamicQuantizeLinear output")
    cast = graph.only_consumer(conv.output[0], "Cast")
    rescale = graph.only_consumer(cast.output[0], "Mul")
    scale_name = rescale.input[1] if rescale.input[0] == cast.output[0] else rescale.input[0]
    scales = graph.producer.get(scale_name)
    if scales is None or scales.op_type != "Mul":
        raise ExportError(f"{conv.name}: output scale is not x_scale * w_scale")
    w_scale_name = next((name for name in scales.input if name in graph.initializers), None)
    if w_scale_name is None:
        raise ExportError(f"{conv.name}: no constant weight scale")
    w_scale = graph.constant(w_scale_name).astype(np.float64)
    if w_scale.size != 1:
        raise ExportError(f"{conv.name}: weight scale is not per-tensor ({w_scale.shape})")

    weight = (graph.constant(w_quantized).astype(np.float64) - np.float64(w_zero_point)) * float(w_scale)
    base = w_quantized.removesuffix("_quantized")
    tensors = [numpy_helper.from_array(weight.astype(np.float32), name=base)]
    conv_inputs = [quantize.input[0], base]
    replaced = {conv.name, cast.name, rescale.name, scales.name}
    output = rescale.output[0]

    # The bias, when there is one, is an Add of a reshaped [C] initializer right after the rescale.
    users = graph.consumers.get(rescale.output[0], [])
    if len(users) == 1 and users[0].op_type == "Add":
        add = users[0]
        bias_name = add.input[1] if add.input[0] == rescale.output[0] else add.input[0]
        bias_reshape = graph.producer.get(bias_name)
        if bias_reshape is not None and bias_reshape.op_type == "Reshape":
            bias = graph.constant(bias_reshape.input[0]).astype(np.float32).reshape(-1)
            tensors.append(numpy_helper.from_array(bias, name=bias_reshape.input[0] + "_fp32"))
            conv_inputs.append(tensors[-1].name)
            replaced.add(add.name)
            output = add.output[0]
    attributes = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    node = helper.make_node(
        "Conv", conv_inputs, [output], name=conv.name.removesuffix("_quant"), **attributes
    )
    return node, tensors, replaced


def dequantize(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with every ConvInteger chain turned into a float Conv (see module doc)."""
    import onnx
    from onnx import helper

    graph = _Graph(model.graph)
    convs = [node for node in model.graph.node if node.op_type == "ConvInteger"]
    new_conv_by_first: dict[str, onnx.NodeProto] = {}
    new_tensors: list[onnx.TensorProto] = []
    replaced: set[str] = set()
    for conv in convs:
        node, tensors, names = _float_conv(graph, conv)
        new_conv_by_first[conv.name] = node
        new_tensors += tensors
        replaced |= names
    # Each new Conv takes the place of its ConvInteger so the node list stays topologically sorted
    # (its input x is produced before the DynamicQuantizeLinear that fed the ConvInteger).
    nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        if node.name in new_conv_by_first:
            nodes.append(new_conv_by_first[node.name])
        elif node.name not in replaced:
            nodes.append(node)
    nodes = _prune(nodes, [out.name for out in model.graph.output])
    used = {name for node in nodes for name in node.input}
    kept_inits = [init for init in model.graph.initializer if init.name in used]
    kept_inits += [t for t in new_tensors if t.name in used]
    new_graph = helper.make_graph(
        nodes,
        model.graph.name,
        list(model.graph.input),
        list(model.graph.output),
        initializer=kept_inits,
    )
    out = helper.make_model(new_graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    out.producer_name = "shoebox onnx_models.rebuild_yolo26"
    meta = {p.key: p.value for p in model.metadata_props}
    meta.pop("onnx.infer", None)  # it named onnxruntime.quant, which no longer applies
    meta["shoebox.rebuilt_from"] = f"{SOURCE_FILE} sha256 {SOURCE_SHA256}: ConvInteger -> fp32 Conv"
    helper.set_model_props(out, meta)
    left = {node.op_type for node in nodes} & {"ConvInteger", "DynamicQuantizeLinear", "Cast"}
    n_conv = sum(node.op_type == "Conv" for node in nodes)
    if left - {"Cast"} or n_conv != len(convs):
        raise ExportError(f"rebuild incomplete: {sorted(left)} remain, {n_conv} Conv for {len(convs)}")
    onnx.checker.check_model(out, full_check=True)
    return out


STRIDES = (8, 16, 32)
EXPORT_SIZE = 640
# The int8 export's constants tied to its 640 x 640 input.
ANCHOR_POINTS = "/model.23/Constant_12_output_0", "/model.23/Constant_13_output_0"
ANCHOR_STRIDES = "/model.23/Constant_14_output_0"
ATTENTION_BLOCKS = "/model.10/m/m.0/attn", "/model.22/m.0/m.0.1/attn"
BOX_MAPS = tuple(f"/model.23/one2one_cv2.{level}/one2one_cv2.{level}.2/Conv_output_0" for level in range(3))


def _anchor_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Ultralytics' anchor points ([1, 2, N], cell centres in grid units, rows first) and strides [1, N]."""
    points, strides = [], []
    for stride in STRIDES:
        ys, xs = np.meshgrid(np.arange(height // stride), np.arange(width // stride), indexing="ij")
        points.append(np.stack([xs.ravel(), ys.ravel()]) + 0.5)
        strides.append(np.full(xs.size, stride))
    return np.concatenate(points, axis=1)[None].astype(np.float32), np.concatenate(strides)[None].astype(
        np.float32
    )


def free_input_size(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with a free input height and width: the anchor constants are computed from the three
    box maps' shapes, and the attention blocks reshape to their input's shape (see module doc)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = _Graph(model.graph)
    points, strides = _anchor_grid(EXPORT_SIZE, EXPORT_SIZE)
    for name in ANCHOR_POINTS:
        if not np.array_equal(graph.constant(name), points):
            raise ExportError(f"{name} is not the {EXPORT_SIZE} px anchor grid")
    if not np.array_equal(graph.constant(ANCHOR_STRIDES), strides):
        raise ExportError(f"{ANCHOR_STRIDES} is not the {EXPORT_SIZE} px stride row")

    def const(name: str, value: np.ndarray) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name))

    added = [
        const("free/zero", np.array(0.0, dtype=np.float32)),
        const("free/one", np.array(1.0, dtype=np.float32)),
        const("free/half", np.array(0.5, dtype=np.float32)),
        const("free/h_at", np.array([2], dtype=np.int64)),
        const("free/w_at", np.array([3], dtype=np.int64)),
        const("free/end", np.array([4], dtype=np.int64)),
        const("free/axis0", np.array([0], dtype=np.int64)),
        const("free/axis1", np.array([1], dtype=np.int64)),
        # No leading 1 in these shapes: a batch-N cut of the graph sets such dims to 0 (keep).
        const("free/points_shape", np.array([2, -1], dtype=np.int64)),
        const("free/strides_shape", np.array([-1], dtype=np.int64)),
        const("free/qkv_shape", np.array([1, 2, 128, -1], dtype=np.int64)),
    ]
    level_points, level_strides = [], []
    for level, (box_map, stride) in enumerate(zip(BOX_MAPS, STRIDES, strict=True)):
        if box_map not in graph.producer:
            raise ExportError(f"{box_map} is not in the graph")
        p = f"free/level{level}/"
        added += [
            helper.make_node("Shape", [box_map], [p + "shape"]),
            helper.make_node("Slice", [p + "shape", "free/h_at", "free/w_at"], [p + "h"]),
            helper.make_node("Slice", [p + "shape", "free/w_at", "free/end"], [p + "w"]),
            helper.make_node("Concat", [p + "h", p + "w"], [p + "hw"], axis=0),
        ]
        for axis in ("h", "w"):  # cell centres 0.5, 1.5, ... along each axis
            added += [
                helper.make_node("Cast", [p + axis], [p + axis + "_f"], to=TensorProto.FLOAT),
                helper.make_node("Squeeze", [p + axis + "_f", "free/axis0"], [p + axis + "_n"]),
                helper.make_node("Range", ["free/zero", p + axis + "_n", "free/one"], [p + axis + "_i"]),
                helper.make_node("Add", [p + axis + "_i", "free/half"], [p + axis + "_c"]),
            ]
        added += [
            helper.make_node("Unsqueeze", [p + "h_c", "free/axis1"], [p + "y_col"]),
            helper.make_node("Unsqueeze", [p + "w_c", "free/axis0"], [p + "x_row"]),
            helper.make_node("Expand", [p + "y_col", p + "hw"], [p + "ys"]),
            helper.make_node("Expand", [p + "x_row", p + "hw"], [p + "xs"]),
            helper.make_node("Unsqueeze", [p + "xs", "free/axis0"], [p + "xs1"]),
            helper.make_node("Unsqueeze", [p + "ys", "free/axis0"], [p + "ys1"]),
            helper.make_node("Concat", [p + "xs1", p + "ys1"], [p + "xy"], axis=0),
            helper.make_node("Reshape", [p + "xy", "free/points_shape"], [p + "points_2d"]),
            helper.make_node("Unsqueeze", [p + "points_2d", "free/axis0"], [p + "points"]),
            const(p + "stride", np.array(float(stride), dtype=np.float32)),
            helper.make_node("Mul", [p + "ys1", "free/zero"], [p + "zeros"]),
            helper.make_node("Add", [p + "zeros", p + "stride"], [p + "stride_grid"]),
            helper.make_node("Reshape", [p + "stride_grid", "free/strides_shape"], [p + "strides_1d"]),
            helper.make_node("Unsqueeze", [p + "strides_1d", "free/axis0"], [p + "strides"]),
        ]
        level_points.append(p + "points")
        level_strides.append(p + "strides")
    added += [
        helper.make_node("Concat", level_points, ["free/anchor_points"], axis=2),
        helper.make_node("Concat", level_strides, ["free/anchor_strides"], axis=1),
    ]
    renamed = dict.fromkeys(ANCHOR_POINTS, "free/anchor_points") | {ANCHOR_STRIDES: "free/anchor_strides"}
    rewired = 0
    for block in ATTENTION_BLOCKS:
        qkv = next((n for n in model.graph.node if n.name == f"{block}/qkv/conv/Conv"), None)
        if qkv is None:
            raise ExportError(f"no {block}/qkv/conv/Conv in the graph")
        added.append(helper.make_node("Shape", [qkv.input[0]], [f"free{block}/input_shape"]))
        for node in model.graph.node:
            if node.op_type != "Reshape" or not node.name.startswith(block + "/"):
                continue
            shape = graph.constant(node.input[1]).tolist()
            if shape == [1, 2, 128, (EXPORT_SIZE // 32) ** 2]:
                node.input[1] = "free/qkv_shape"
            elif shape == [1, 128, EXPORT_SIZE // 32, EXPORT_SIZE // 32]:
                node.input[1] = f"free{block}/input_shape"
            else:
                raise ExportError(f"{node.name}: unexpected reshape {shape}")
            rewired += 1
    if rewired != 3 * len(ATTENTION_BLOCKS):
        raise ExportError(f"{rewired} attention reshapes rewired, expected {3 * len(ATTENTION_BLOCKS)}")
    for node in model.graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
    nodes = _topological(list(model.graph.node) + added, model.graph)
    nodes = _prune(nodes, [out.name for out in model.graph.output])
    used = {name for node in nodes for name in node.input}
    image = onnx.ValueInfoProto()
    image.CopyFrom(model.graph.input[0])
    dims = image.type.tensor_type.shape.dim
    for dim, dim_name in zip(dims[2:], ("height", "width"), strict=True):
        dim.ClearField("dim_value")
        dim.dim_param = dim_name
    new_graph = helper.make_graph(
        nodes,
        model.graph.name,
        [image],
        list(model.graph.output),
        initializer=[init for init in model.graph.initializer if init.name in used],
    )
    out = helper.make_model(new_graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    out.producer_name = model.producer_name
    meta = {p.key: p.value for p in model.metadata_props}
    meta["shoebox.input_size"] = "free height and width (multiples of 32); anchors from the feature maps"
    helper.set_model_props(out, meta)
    onnx.checker.check_model(out, full_check=True)
    return out


def _topological(nodes: list[onnx.NodeProto], graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """`nodes` ordered so every input is produced before it is read (stable for an ordered list)."""
    ready = {init.name for init in graph.initializer} | {value.name for value in graph.input} | {""}
    ordered: list[onnx.NodeProto] = []
    waiting = nodes
    while waiting:
        still = []
        for node in waiting:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                still.append(node)
        if len(still) == len(waiting):
            raise ExportError(f"graph has unproduced inputs: {[n.name or n.output[0] for n in still][:5]}")
        waiting = still
    return ordered


def _prune(nodes: list[onnx.NodeProto], outputs: Sequence[str]) -> list[onnx.NodeProto]:
    """Drop nodes whose outputs nothing uses any more (the bias Reshapes, the scale Muls)."""
    needed = set(outputs)
    kept: list[onnx.NodeProto] = []
    for node in reversed(nodes):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    return kept[::-1]


def source_path(model_dir: Path) -> Path:
    """The int8 file: in the model directory (set-up copies it there first), else in the mirror."""
    candidates = [model_dir / SOURCE_FILE]
    mirror = os.environ.get("SHOEBOX_MODEL_MIRROR")
    if mirror:
        candidates.append(Path(mirror) / SOURCE_FILE)
    candidates.append(REPO_ROOT.parent / "shared" / "models" / SOURCE_FILE)
    for path in candidates:
        if path.is_file():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != SOURCE_SHA256:
                raise ExportError(f"{path} has sha256 {digest[:16]}..., expected {SOURCE_SHA256[:16]}...")
            return path
    raise ExportError(f"{SOURCE_FILE} not found in {', '.join(str(p.parent) for p in candidates)}")


def quantize_qdq(fp32_path: Path, target: Path, calibration_folder: Path, n_images: int = 32) -> Path:
    """A statically quantised (QDQ, per-channel int8 Conv weights, uint8 activations) copy of the fp32
    graph, calibrated (min/max) on the first `n_images` photos of the folder, letterboxed as served."""
    require_modules("onnx", "onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from PIL import Image

    def letterboxed(path: Path) -> np.ndarray:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
        ratio = min(640 / rgb.width, 640 / rgb.height)
        size = (round(rgb.width * ratio), round(rgb.height * ratio))
        canvas = np.full((640, 640, 3), 114, dtype=np.uint8)
        left, top = round((640 - size[0]) / 2 - 0.1), round((640 - size[1]) / 2 - 0.1)
        canvas[top : top + size[1], left : left + size[0]] = np.asarray(
            rgb.resize(size, Image.Resampling.BILINEAR)
        )
        return (canvas.transpose(2, 0, 1)[None] / 255.0).astype(np.float32)

    photos = sorted(p for p in calibration_folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    feeds = iter([{"images": letterboxed(p)} for p in photos[:n_images]])

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(feeds, None)

    with atomic_output(target.with_suffix(".pre.onnx")) as prepared:
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        with atomic_output(target) as tmp:
            quantize_static(
                str(prepared),
                str(tmp),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                op_types_to_quantize=["Conv"],  # the end-to-end head (TopK, gathers) stays float
            )
    target.with_suffix(".pre.onnx").unlink(missing_ok=True)
    return target


def export(model_dir: Path) -> list[Path]:
    require_modules("onnx")
    import onnx

    source = source_path(model_dir)
    rebuilt = free_input_size(dequantize(onnx.load(str(source))))
    target = model_dir / OUTPUT_FILE
    with atomic_output(target) as tmp:
        onnx.save(rebuilt, str(tmp))
    log.info("rebuilt %s from %s (%d fp32 Conv)", target.name, source, EXPECTED_CONVS)
    return [target]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild YOLO26n int8 (ConvInteger) as an fp32 ONNX graph.")
    parser.add_argument("--model-dir", type=Path, default=None, help="default: SHOEBOX_MODEL_DIR / settings")
    parser.add_argument("--qdq", type=Path, default=None, help="also write yolo26n_qdq.onnx calibrated here")
    parser.add_argument("--qdq-images", type=int, default=32)
    args = parser.parse_args(argv)
    if args.qdq is None:
        return export_cli(
            export,
            parser.description or "",
            [] if args.model_dir is None else ["--model-dir", str(args.model_dir)],
        )
    from core.config import get_settings

    model_dir = args.model_dir or get_settings().model_dir
    (fp32,) = export(model_dir)
    print(quantize_qdq(fp32, model_dir / QDQ_FILE, args.qdq, args.qdq_images))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
