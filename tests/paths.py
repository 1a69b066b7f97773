"""Where the shared real photos and model mirror live (../shared beside the checkout by default)."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("SHOEBOX_SHARED_DIR", REPO_ROOT.parent / "shared"))
TESTDATA_DIR = SHARED_DIR / "testdata"
MODEL_DIR = Path(os.environ.get("SHOEBOX_MODEL_DIR", REPO_ROOT / "models"))
