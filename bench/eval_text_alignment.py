"""The alignment head alone on a captions set, with the photo squashed (as trained) or centre-cropped.

Usage: .venv/bin/python bench/eval_text_alignment.py ../shared/testdata/captions

No service, no words: each caption's MiniLM vector (as the search embeds a query) against the head's
vector of every photo of the set; recall@1/5/10 of the caption's own photo. Measures whether computing
the image feature from the photo squashed to 224x224 (how the Flickr8k training copies come, and what
the service does) matters against the labeler's usual short-side resize and centre crop. A measurement
only: nothing is chosen on this set.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _service import REPO_ROOT, list_images

from core.config import Settings
from onnx_models.train_text_alignment import caption_ranks, caption_text, recall_at
from services.analysis.service import ANALYSIS_MAX_SIDE
from services.inference.models import ModelSet
from services.photos.images import load_oriented


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data_folder", type=Path)
    args = parser.parse_args()
    truth: dict[str, list[str]] = json.loads((args.data_folder / "ground_truth.json").read_text())
    paths = [p for p in list_images(args.data_folder / "images") if p.name in truth]
    settings = Settings(model_dir=REPO_ROOT / "models")
    models = ModelSet(settings)
    aligner = models.alignment
    cropping = models.labels
    images = [load_oriented(p.read_bytes(), max_side=ANALYSIS_MAX_SIDE) for p in paths]
    squashed = aligner.embed(images)
    cropped = aligner.project(np.stack([r.embedding for r in cropping.predict(images, top_k=1)]))
    texts = [caption_text(c) for p in paths for c in (truth[p.name] * 5)[:5]]
    captions = models.text.embed(texts).reshape(len(paths), 5, -1)
    print(f"{len(texts)} captions of {len(paths)} photos, head {aligner.model_name}")
    print("image feature            R@1    R@5    R@10   MRR@10")
    for what, vectors in (("squashed to 224 (served)", squashed), ("short side + centre crop", cropped)):
        r = recall_at(caption_ranks(vectors, captions))
        print(f"{what:24} {r['r@1']:.3f}  {r['r@5']:.3f}  {r['r@10']:.3f}  {r['mrr@10']:.3f}")
    agreement = np.sum(squashed * cropped, axis=1)
    print(
        "cosine between the two vectors of a photo: "
        f"median {np.median(agreement):.3f}, min {agreement.min():.3f}"
    )


if __name__ == "__main__":
    main()
