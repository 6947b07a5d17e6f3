"""A fresh session's API: numpy and h5py are loaded only when a request needs them (to keep an idle
session small), so the first process list edited in a new process must still be read, checked and
written correctly. Runs in a new interpreter: the test process has long since imported both."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, sys
from pathlib import Path
from hebi_api.app import create_app
from hebi_common.config import HebiConfig
from hebi_common.identity import HEADER, Identity, sign_identity
from hebi_common.sandbox import Roots
from hebi_common.session import SessionContext

roots = Path(sys.argv[1])
config = HebiConfig.model_validate({"session": {
    "roots": {"data": {"path": str(roots / "data"), "writable": False},
              "processing": {"path": str(roots / "processing"), "writable": True},
              "output": {"path": str(roots / "output"), "writable": True}},
    "state_dir": str(roots / "state")}})
context = SessionContext(user="alice", home="", secret="s", roots=Roots.from_config(config.session.roots, "alice"),
                         state_dir=roots / "state")
client = create_app(config, context).test_client()
client.environ_base["HTTP_" + HEADER.upper().replace("-", "_")] = sign_identity(Identity(user="alice"), "s")
out = {"health": client.get("/api/health").status_code}
created = client.post("/api/process-lists/cold.nxs", json={})
answer = client.post("/api/process-lists/cold.nxs/operations", headers={"If-Match": created.headers["ETag"]},
                     json={"operations": [
                         {"op": "add", "name": "NxtomoLoader"}, {"op": "add", "name": "AstraReconCpu"},
                         {"op": "mod", "pos": "1", "param": "preview", "text": "[':', 'mid', ':']"},
                         {"op": "mod", "pos": "2", "param": "centre_of_rotation", "text": "84:86:0.5"},
                         {"op": "expand", "pos": "2", "param": "centre_of_rotation"}]})
out["edit"] = answer.status_code
out["values"] = answer.json["results"][-1]["values"]
out["reread"] = [p["name"] for p in client.get("/api/process-lists/cold.nxs").json["plugins"]]
print(json.dumps(out))
"""


def test_a_new_sessions_first_edit_reads_checks_and_writes_the_list(tmp_path: Path):
    for name in ("data", "processing", "output"):
        (tmp_path / name).mkdir()
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.splitlines()[-1])
    assert out == {"health": 200, "edit": 200, "values": [84.0, 84.5, 85.0, 85.5],
                   "reread": ["NxtomoLoader", "AstraReconCpu"]}
    assert (tmp_path / "processing" / "cold.nxs").is_file()
