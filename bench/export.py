"""Export time and server memory as the number of photos grows (memory must stay flat).

Usage: .venv/bin/python bench/export.py [FOLDER ...] [--counts 50,150,300]

Photos from the folders (default: every testdata set) are uploaded to a fresh service with automatic
analysis off (the export does not need it and it would dominate the run), each photo gets a user tag
and a caption, then one export per count is built and downloaded. For each: seconds until ready,
photos/s, zip size, and the server's resident memory while the export ran (sampled every 50 ms) above
what it used just before. Flat memory means the increase does not grow with the count.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _service import REPO_ROOT, list_images, running_service, upload_folder

DEFAULT_FOLDERS = [
    REPO_ROOT.parent / "shared" / "testdata" / name for name in ("captions", "detection", "exif", "faces")
]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """Samples a process's resident memory in the background until stopped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mib(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", type=Path, nargs="*", default=DEFAULT_FOLDERS)
    parser.add_argument("--counts", default="50,150,300")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    paths = [
        p
        for folder in args.folders
        for p in list_images(folder / "images" if (folder / "images").is_dir() else folder)
    ]
    with running_service(
        {"SHOEBOX_ANALYZE_ON_UPLOAD": "false", "SHOEBOX_LOAD_MODELS_AT_START": "false"}
    ) as service:
        client = service.client
        ids = list(dict.fromkeys(upload_folder(client, paths).values()))
        for photo_id in ids:
            client.post(f"/v1/photos/{photo_id}/tags", json={"name": "exported"}).raise_for_status()
            client.patch(
                f"/v1/photos/{photo_id}", json={"caption": "A photo from the bench"}
            ).raise_for_status()
        print(f"{len(ids)} photos uploaded and tagged")
        print("| photos | seconds | photos/s | zip MiB | server RSS before | peak during | increase |")
        print("|---|---|---|---|---|---|---|")
        for count in (c for c in counts if c <= len(ids)):
            before = rss_mib(service.pid)
            with PeakRss(service.pid) as memory:
                started = time.perf_counter()
                export = client.post("/v1/exports", json={"photo_ids": ids[:count]}).json()
                while export["state"] not in ("ready", "failed", "cancelled"):
                    time.sleep(0.1)
                    export = client.get(f"/v1/exports/{export['id']}").json()
                size = 0
                with client.stream("GET", f"/v1/exports/{export['id']}/download") as response:
                    for chunk in response.iter_bytes(1 << 20):
                        size += len(chunk)
                elapsed = time.perf_counter() - started
            rate = count / elapsed
            print(
                f"| {count} | {elapsed:.1f} | {rate:.1f} | {size / 2**20:.1f} | {before:.0f} MiB | "
                f"{memory.peak:.0f} MiB | {memory.peak - before:+.0f} MiB |"
            )


if __name__ == "__main__":
    main()
