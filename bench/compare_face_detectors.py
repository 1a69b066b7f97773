"""MTCNN against YuNet: detection, false faces, time, and what each does for recognition.

Usage: .venv/bin/python bench/compare_face_detectors.py FACES_FOLDER [--group-folder DETECTION_FOLDER]

FACES_FOLDER has the testdata/faces layout (images/ + ground_truth.json, one main person per photo).
For each detector: share of photos with a face found, extra faces per photo, ms per photo, and k=1
nearest-centroid identification of the main (largest) face with MobileFaceNet on that detector's
landmarks (5 seeded draws). With --group-folder (COCO layout), faces found on photos with 3+ people.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from services.images import load_oriented  # noqa: E402
from services.inference.faces import FaceAnalyzer, FaceEmbedder, load_face_detector  # noqa: E402


def k1_accuracy(embeddings: dict[str, np.ndarray], truth: dict[str, str], seeds: int = 5) -> float:
    by_person: dict[str, list[str]] = defaultdict(list)
    for name, person in truth.items():
        by_person[person].append(name)
    scores = []
    for seed in range(seeds):
        rng = random.Random(seed)
        enrolled = {person: rng.choice(names) for person, names in by_person.items()}
        people = sorted(enrolled)
        gallery = np.stack([embeddings.get(enrolled[p], np.zeros(128, dtype=np.float32)) for p in people])
        right = total = 0
        for name, person in truth.items():
            if name == enrolled[person]:
                continue
            total += 1
            if name in embeddings:
                right += people[int(np.argmax(gallery @ embeddings[name]))] == person
        scores.append(right / total)
    return statistics.mean(scores)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("faces_folder", type=Path)
    parser.add_argument("--group-folder", type=Path)
    args = parser.parse_args()
    truth: dict[str, str] = json.loads((args.faces_folder / "ground_truth.json").read_text())
    images = {
        name: load_oriented((args.faces_folder / "images" / name).read_bytes(), max_side=1280)
        for name in truth
    }
    groups = []
    if args.group_folder:
        coco = json.loads((args.group_folder / "ground_truth.json").read_text())
        groups = [
            load_oriented((args.group_folder / "images" / name).read_bytes(), max_side=1280)
            for name, objects in sorted(coco.items())
            if sum(o["class_name"] == "person" for o in objects) >= 3
        ]
    embedder = FaceEmbedder()
    print("| detector | photos with a face | extra faces/photo | ms/photo | k=1 right | group photos |")
    print("|---|---|---|---|---|---|")
    for name in ("yunet", "mtcnn"):
        analyzer = FaceAnalyzer(detector=load_face_detector(name), embedder=embedder)
        analyzer.analyze([next(iter(images.values()))])  # warm-up
        started = time.perf_counter()
        results = {photo: analyzer.analyze([image])[0] for photo, image in images.items()}
        per_photo_ms = (time.perf_counter() - started) * 1000 / len(images)
        found = sum(bool(faces) for faces in results.values()) / len(results)
        extra = statistics.mean(max(0, len(faces) - 1) for faces in results.values())
        main_embeddings = {
            photo: max(faces, key=lambda f: f.detection.box[2] * f.detection.box[3]).embedding
            for photo, faces in results.items()
            if faces
        }
        accuracy = k1_accuracy(main_embeddings, truth)
        group_faces = sum(len(faces) for faces in analyzer.detector.detect(groups)) if groups else 0
        group = f"{group_faces} faces on {len(groups)}"
        print(f"| {name} | {found:.3f} | {extra:.2f} | {per_photo_ms:.0f} | {accuracy:.3f} | {group} |")


if __name__ == "__main__":
    main()
