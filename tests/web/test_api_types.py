"""The web app's API types (web/src/api-schema.ts) are generated from the API's OpenAPI document by
`npm run api-types` and committed; this fails when the API changed and they were not made again."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from conftest import REPO, real_component


def test_the_committed_api_types_match_the_apis_document(tmp_path):
    web = REPO / "web"
    real_component("node with the web app's packages", shutil.which("node") is not None
                   and (web / "node_modules" / "openapi-typescript").is_dir(), "run scripts/bootstrap.sh")
    out = tmp_path / "api-schema.ts"
    subprocess.run(["node", "scripts/api-types.mjs"], cwd=web, check=True, capture_output=True,
                   env={**os.environ, "PYTHON": sys.executable, "API_TYPES_OUT": str(out)}, timeout=120)
    assert out.read_text() == (web / "src" / "api-schema.ts").read_text(), "run `npm run api-types` in web/"
