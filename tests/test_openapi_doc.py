"""openapi.md documents every endpoint of the app, and every operation has an explicit id."""

import re

from api.main import create_app
from core.config import REPO_ROOT


def test_openapi_md_lists_every_path_and_method() -> None:
    schema = create_app().openapi()
    doc = (REPO_ROOT / "openapi.md").read_text()
    documented = set(re.findall(r"^#+ +`?(GET|POST|PUT|PATCH|DELETE) (/\S*?)`?$", doc, flags=re.M))
    actual = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    assert actual - documented == set(), "endpoints missing from openapi.md"
    assert documented - actual == set(), "openapi.md documents endpoints the app does not have"
    # Ids are `<tag>-<route name>` (api.main.operation_id), never FastAPI's generated
    # `list_photos_v1_photos_get`, and unique, so generated SDKs get clean, stable method names.
    ids = [op["operationId"] for ops in schema["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            tag = op["tags"][0]
            assert re.fullmatch(rf"{tag}-[a-z_-]+", op["operationId"]), (method, path, op["operationId"])
    section_examples = re.split(r"^#+ +`?(?:GET|POST|PUT|PATCH|DELETE) ", doc, flags=re.M)[1:]
    assert all("curl" in section for section in section_examples), "every endpoint needs a curl example"
