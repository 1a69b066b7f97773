"""What /readyz reports about models: every default model file of the manifest is on disk."""

from core.config import Settings
from onnx_models.manifest import load_manifest


def model_readiness(settings: Settings) -> dict[str, str]:
    checks: dict[str, str] = {}
    for entry in load_manifest().models:
        if not entry.default:
            continue
        missing = [f for f in (entry.file, *entry.extra_files) if not (settings.model_dir / f).is_file()]
        checks[f"model:{entry.name}"] = "ok" if not missing else f"missing {', '.join(missing)}"
    return checks
