"""How the alignment head's recipe was chosen: a small sweep, scored on the held-apart validation split.

Usage: .venv/bin/python bench/sweep_text_alignment.py [--quick]

Uses the trainer's cached features (onnx_models/train_text_alignment.py computes them on first use),
trains one head per recipe and prints the validation recall at its best epoch (galleries of 100
validation photos, as the product bar counts; and over the whole split). The product's caption set is
never read. The chosen recipe is `HeadConfig`'s defaults.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _service import REPO_ROOT

from onnx_models.train_text_alignment import DEFAULT_DATA, HeadConfig, load_dataset, train_head

RECIPES: list[dict[str, float | int]] = [
    {},
    {"hidden": 0},
    {"dropout": 0.5},
    {"hidden": 512, "dropout": 0.5},
    {"hidden": 2048, "dropout": 0.5},
    {"weight_decay": 0.5},
    {"learning_rate": 3e-4},
    {"learning_rate": 3e-4, "dropout": 0.5},
    {"batch_size": 256},
    {"initial_temperature": 0.03},
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="the first four recipes only")
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "bench" / "reports" / "text_alignment_sweep.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = load_dataset(DEFAULT_DATA, REPO_ROOT / "models", threads=1)
    rows = []
    print("recipe (changes from the defaults)         epoch  R@1    R@5    R@10   (whole split R@10)")
    for change in RECIPES[:4] if args.quick else RECIPES:
        config = replace(HeadConfig(), **change)  # type: ignore[arg-type]
        _, result = train_head(data, config)
        best = result.epochs[result.best_epoch - 1]
        row = {
            "change": change,
            "config": asdict(config),
            "best_epoch": result.best_epoch,
            "gallery_recall": best.gallery_recall,
            "split_recall": best.split_recall,
            "seconds": round(result.seconds, 1),
        }
        rows.append(row)
        label = json.dumps(change) if change else "defaults"
        g = best.gallery_recall
        print(
            f"{label:42} {result.best_epoch:5d}  {g['r@1']:.3f}  {g['r@5']:.3f}  {g['r@10']:.3f}"
            f"  ({best.split_recall['r@10']:.3f})",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
