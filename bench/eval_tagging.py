"""Tagging through the real service: object-tag precision/recall per image and mAP50 of the stored boxes.

Usage: .venv/bin/python bench/eval_tagging.py DATA_FOLDER [--models NAME ...] [--limit N] [--chunk 16]
       [--keep-data]

DATA_FOLDER holds images/ and ground_truth.json ({"file.jpg": [{"class_name", "class_id",
"bbox_xyxy_normalised": [x1, y1, x2, y2]}, ...]}). The script starts the service (fresh data
directory), uploads the images over HTTP, waits for the automatic analysis, then reads each photo back:

- tag sets: a photo's object tags (kind "object", state not "rejected") against the set of classes in
  its ground truth; micro precision/recall over (image, class) pairs (SPEC 6: >= 0.87 / >= 0.71);
- mAP50: COCO-style 101-point interpolated AP per class at IoU 0.5, averaged over the classes present
  in the ground truth, from the boxes the service stored (GET /v1/photos/{id}/detections, or the
  `detections` table of its SQLite file when the endpoint is missing). The service stores only boxes
  scoring at least the tag evidence floor, so this is a lower bound of the bare detector's mAP50
  (which ranks detections down to conf 0.001).

--models runs the whole thing once per object detector (manifest names, through SHOEBOX_OBJECTS_MODEL,
each in a fresh service) and ends with a side-by-side table, e.g. `--models yolov8n_int8 yolo26n_fp32`.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _detection_metrics import Box, map50
from _service import Service, list_images, route_exists, running_service, upload_folder, wait_for_analysis

DETECTIONS_ROUTE = "/v1/photos/{photo_id}/detections"
PRECISION_BAR, RECALL_BAR = 0.87, 0.71


def tag_counts(
    predicted: dict[str, set[str]], gt: dict[str, list[dict[str, Any]]]
) -> tuple[int, int, int, dict[str, list[int]]]:
    """Micro tp/fp/fn over (image, class) pairs, plus [tp, fp, fn] per class."""
    per_class: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    tp = fp = fn = 0
    for image, objects in gt.items():
        truth = {o["class_name"] for o in objects}
        got = predicted.get(image, set())
        for cls in truth & got:
            per_class[cls][0] += 1
        for cls in got - truth:
            per_class[cls][1] += 1
        for cls in truth - got:
            per_class[cls][2] += 1
        tp, fp, fn = tp + len(truth & got), fp + len(got - truth), fn + len(truth - got)
    return tp, fp, fn, per_class


def ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


# ---- reading the service --------------------------------------------------------------------------


def object_tags(photo: dict[str, Any]) -> set[str]:
    return {t["name"] for t in photo.get("tags", []) if t["kind"] == "object" and t["state"] != "rejected"}


def boxes_from_api(service: Service, photo_id: str) -> list[Box]:
    response = service.client.get(DETECTIONS_ROUTE.format(photo_id=photo_id))
    response.raise_for_status()
    return [
        Box(d["class_name"], float(d["score"]), (x, y, x + w, y + h))
        for d in response.json()["items"]
        for x, y, w, h in [d["bbox"]]
    ]


def boxes_from_db(db_path: Path, photo_ids: list[str]) -> dict[str, list[Box]]:
    """Fallback when the detections endpoint is missing: read the service's own SQLite file."""
    out: dict[str, list[Box]] = defaultdict(list)
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        marks = ",".join("?" * len(photo_ids))
        rows = conn.execute(
            "SELECT photo_id, class_name, score, box_x, box_y, box_w, box_h FROM detections "
            f"WHERE photo_id IN ({marks})",
            photo_ids,
        )
        for photo_id, cls, score, x, y, w, h in rows:
            out[photo_id].append(Box(cls, float(score), (x, y, x + w, y + h)))
    return out


@dataclass
class ModelResult:
    model: str
    precision: float
    recall: float
    map50: float
    tp: int
    fp: int
    fn: int
    boxes: int
    seconds: float


def evaluate(
    args: argparse.Namespace, model: str | None, paths: list[Path], gt: dict[str, list[dict[str, Any]]]
) -> ModelResult:
    env = {"SHOEBOX_OBJECTS_MODEL": model} if model else {}
    with running_service(env_overrides=env, keep_data=args.keep_data) as service:
        started = time.perf_counter()
        ids = upload_folder(service.client, paths, chunk=args.chunk)
        wait_for_analysis(service.client, expected=len(ids))
        seconds = time.perf_counter() - started
        print(f"uploaded and analysed {len(ids)} photos in {seconds:.1f}s")

        photos = {name: service.client.get(f"/v1/photos/{pid}").json() for name, pid in ids.items()}
        failed = sorted(name for name, p in photos.items() if p["analysis_state"] != "done")
        predicted = {name: object_tags(p) for name, p in photos.items()}

        if route_exists(service.client, DETECTIONS_ROUTE):
            box_source = f"GET {DETECTIONS_ROUTE}"
            stored = {name: boxes_from_api(service, pid) for name, pid in ids.items()}
        else:
            box_source = "the service's SQLite `detections` table (no detections endpoint yet)"
            by_id = boxes_from_db(service.db_path, list(ids.values()))
            stored = {name: by_id.get(pid, []) for name, pid in ids.items()}
        # The detector that made the stored boxes, as the service records it.
        used = sorted(
            {
                str(d["model"])
                for pid in list(ids.values())[:8]
                for d in service.client.get(DETECTIONS_ROUTE.format(photo_id=pid)).json().get("items", [])
            }
        )

    # Images the service did not accept count as "nothing predicted" (they stay in the denominator).
    tp, fp, fn, per_class = tag_counts(predicted, gt)
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    m, aps = map50(stored, gt)
    n_boxes = sum(len(v) for v in stored.values())
    min_score = min((b.score for v in stored.values() for b in v), default=float("nan"))

    def row(cls: str) -> str:
        c_tp, c_fp, c_fn = per_class[cls]
        return (
            f"  {cls:16s} tp {c_tp:3d} fp {c_fp:3d} fn {c_fn:3d}  "
            f"P {ratio(c_tp, c_tp + c_fp):.2f} R {ratio(c_tp, c_tp + c_fn):.2f}  "
            f"AP50 {aps.get(cls, float('nan')):.3f}"
        )

    print("\nworst classes by missed images (fn):")
    for cls in sorted(per_class, key=lambda c: (-per_class[c][2], c))[: args.worst]:
        if per_class[cls][2]:
            print(row(cls))
    print("worst classes by false tags (fp):")
    for cls in sorted(per_class, key=lambda c: (-per_class[c][1], c))[: args.worst]:
        if per_class[cls][1]:
            print(row(cls))
    print("lowest AP50 (classes in ground truth):")
    for cls in sorted(aps, key=lambda c: (aps[c], c))[: args.worst]:
        print(f"  {cls:16s} AP50 {aps[cls]:.3f}")

    ok_p, ok_r = precision >= PRECISION_BAR, recall >= RECALL_BAR
    print(f"\n==== tagging summary (through the HTTP API), detector {model or 'manifest default'} ====")
    print(
        f"data            {args.data_folder}  ({len(gt)} images, {sum(len(v) for v in gt.values())} objects)"
    )
    print(f"detector        {', '.join(used) or 'unknown'} (as the service reports it)")
    print(
        f"analysed        {len(ids) - len(failed)} done, {len(failed)} failed, "
        f"{len(gt) - len(ids)} not uploaded"
    )
    print(f"image-class     tp {tp}  fp {fp}  fn {fn}")
    print(f"precision       {precision:.3f}  (bar >= {PRECISION_BAR}: {'PASS' if ok_p else 'FAIL'})")
    print(f"recall          {recall:.3f}  (bar >= {RECALL_BAR}: {'PASS' if ok_r else 'FAIL'})")
    print(
        f"mAP50           {m:.3f}  over {len(aps)} classes; "
        f"{n_boxes} stored boxes (min score {min_score:.3f})"
    )
    print(f"boxes from      {box_source}")
    if failed:
        print(f"failed photos   {', '.join(failed[:10])}{' ...' if len(failed) > 10 else ''}")
    return ModelResult(model or "default", precision, recall, m, tp, fp, fn, n_boxes, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_folder", type=Path)
    parser.add_argument(
        "--models", nargs="*", default=None, help="object detectors to compare (default: manifest default)"
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N images (sorted by name)")
    parser.add_argument("--chunk", type=int, default=16, help="files per upload request")
    parser.add_argument("--worst", type=int, default=8, help="classes listed per offender table")
    parser.add_argument("--keep-data", action="store_true", help="keep the service's data dir")
    args = parser.parse_args()

    truth_all: dict[str, list[dict[str, Any]]] = json.loads(
        (args.data_folder / "ground_truth.json").read_text()
    )
    on_disk = [p for p in list_images(args.data_folder / "images") if p.name in truth_all]
    if len(on_disk) < len(truth_all):
        print(f"note: {len(truth_all) - len(on_disk)} ground-truth entries have no image file; left out")
    paths = on_disk[: args.limit]
    gt = {p.name: truth_all[p.name] for p in paths}
    n_objects = sum(len(v) for v in gt.values())
    n_classes = len({o["class_name"] for objects in gt.values() for o in objects})
    print(f"{len(gt)} images, {n_objects} labelled objects, {n_classes} classes")

    results = [evaluate(args, model, paths, gt) for model in (args.models or [None])]
    if len(results) > 1:
        print("\n==== side by side (same images, same run) ====")
        print("detector          precision  recall  mAP50    tp   fp   fn   boxes  upload+analysis")
        for r in results:
            print(
                f"{r.model:16s} {r.precision:10.3f} {r.recall:7.3f} {r.map50:6.3f} {r.tp:5d} {r.fp:4d} "
                f"{r.fn:4d} {r.boxes:7d} {r.seconds:15.1f}s"
            )


if __name__ == "__main__":
    main()
