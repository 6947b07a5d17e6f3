"""The "kubernetes" kind of the job suite: jobs as batch/v1 Jobs on the fake cluster (tests/fakekube),
whose kubelet runs each job's Pod with podman from the hebi-api image, as the test user's own uid.

The fake Savu runs in the Pod with the image's python3 from this folder, mounted read-only; the roots
are mounted at their own paths. The API itself runs as root on this machine (the suite's ApiProcess),
so the roots get an ACL (and a default ACL, inherited by every folder the API makes in them) that lets
the job's uid write, as a facility's shared file system lets a user write their own folders.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, real_component

#: The uid (and gid) the test user's jobs run as: no account needed, podman takes numbers.
JOB_UID = 20301
HERE = Path(__file__).parent
#: Most jobs of the user running at once (the suite's preview, then two at a time).
MAX_PARALLEL = 2
#: hebi-api's virtual environment (images/api/Containerfile).
IMAGE_PYTHON = "/opt/hebi/bin/python3"

_ACL_USER_OBJ, _ACL_USER, _ACL_GROUP_OBJ, _ACL_MASK, _ACL_OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_NO_ID = 0xFFFFFFFF


def grant(folder: Path, uid: int) -> None:
    """rwx for ``uid`` on ``folder`` and everything later made in it: a POSIX ACL written as the kernel's
    extended attribute (no setfacl needed), access and default."""
    entries = [(_ACL_USER_OBJ, 7, _NO_ID), (_ACL_USER, 7, uid), (_ACL_GROUP_OBJ, 5, _NO_ID), (_ACL_MASK, 7, _NO_ID),
               (_ACL_OTHER, 5, _NO_ID)]
    value = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)
    os.setxattr(folder, "system.posix_acl_access", value)
    os.setxattr(folder, "system.posix_acl_default", value)


def runner_image() -> str:
    """A hebi-api image (python3 with h5py and hebi_common). One already built serves, whichever
    version: the fake Savu needs nothing newer, and api/ changes would otherwise rebuild it each run."""
    report = REPO / ".cache" / "images.json"
    if report.exists():
        tag = json.loads(report.read_text())["images"].get("api", {}).get("tag", "")
        if tag and subprocess.run(["podman", "image", "exists", tag]).returncode == 0:
            return tag
    import local_system
    return local_system.images()["api"]


@pytest.fixture(scope="session")
def kube_jobs_cluster(tmp_path_factory):
    real_component("podman as root", os.geteuid() == 0 and shutil.which("podman") is not None,
                   "run as root with podman installed (scripts/install-system.sh podman)")
    from fakekube import FakeCluster
    image = runner_image()
    with FakeCluster(tmp_path_factory.mktemp("kube-jobs"), node_cpu="4", node_memory="8Gi") as cluster:
        cluster.runner_image = image
        yield cluster


def kubernetes_setup(request, base: Path):
    cluster = request.getfixturevalue("kube_jobs_cluster")
    for name in ("data", "processing", "output"):
        folder = base / "roots" / name
        folder.mkdir(parents=True, exist_ok=True)
        try:
            grant(folder, JOB_UID)
        except OSError as err:
            real_component("POSIX ACLs", False, f"the file system of {folder} has no ACLs: {err}")
    # The image's own Python, named by its path there: the API resolves a bare name on its PATH (here
    # the host's venv, which the image has not).
    command = [IMAGE_PYTHON, str(HERE / "fake_savu.py"), "{data}", "{process_list}", "{output}", "-f", "{folder}"]
    jobs = {"command": command, "code": {"python": IMAGE_PYTHON}, "kubernetes": {
        "kubeconfig": str(cluster.kubeconfig), "image": cluster.runner_image, "pull_policy": "IfNotPresent",
        "max_parallel": MAX_PARALLEL, "run_as_user": JOB_UID, "run_as_group": JOB_UID, "kill_grace": 2,
        "mounts": {str(HERE): {"host_path": str(HERE)}}}}
    return {}, jobs
