"""The trust suite's hostile jobs, run as alice in her podman session: hebi refuses each one, and now the
kernel does too. Inside alice's pod bob's folders are not mounted, so the exact paths the hostile inputs
name do not exist there, and a plain h5py read (what real Savu would do, bypassing hebi's checks) finds
nothing of bob's. Reuses the podman session fixtures; needs root, podman and the images."""
import hashlib
import os
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_podman_sessions import accounts, podman, pods, record, wheelhouse_page  # noqa: F401 - pods (and what it needs) is the shared fixture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "security"))
from attack import simple_list, snapshot, tiny_scan  # noqa: E402 - the trust suite's builders
from make_sample_data import write_nxtomo  # noqa: E402 - on sys.path through tests/conftest.py

DETECTOR = "entry1/tomo_entry/instrument/detector/data"
#: Bob's scan has its own name and its own values: HDF5 looks for a missing external file by its bare name
#: beside the linking file too, so a link to bob's "scan.nxs" would rightly open alice's own scan.nxs.
BOB_SCAN = "bob_scan.nxs"
#: What h5py says, inside the pod, when the file a link or a dataset names is not there.
NOT_THERE = ("no such file", "unable to open", "can't open file", "unable to synchronously open")
JOB_WAIT = 180  # seconds a tiny job may take in a pod on a busy machine before the test gives up
ENDED_BADLY = ("failed", "cancelled", "timeout", "lost")


def relative_to_bob(alice_folder: Path, bob_file: Path) -> str:
    """The ``../../bob/...`` spelling of a path of bob's, as seen from a file in alice's folder."""
    return os.path.relpath(bob_file, alice_folder)


def crafted_scan(path: Path, how: str, bob_scan: Path, relative: str) -> None:
    """A data file of alice's whose /entry1 (or detector data) is bob's scan, as in test_isolation."""
    if how in ("external link", "relative external link"):
        with h5py.File(path, "w") as f:
            f["entry1"] = h5py.ExternalLink(str(bob_scan) if how == "external link" else relative, "/entry1")
        return
    tiny_scan(path)
    with h5py.File(bob_scan, "r") as src:
        shape, dtype, offset = src[DETECTOR].shape, src[DETECTOR].dtype, src[DETECTOR].id.get_offset()
    with h5py.File(path, "a") as f:
        detector = f["entry1/tomo_entry/instrument/detector"]
        del f["entry1/tomo_entry/data/data"]
        del detector["data"]
        if how == "virtual dataset":
            layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
            layout[...] = h5py.VirtualSource(str(bob_scan), DETECTOR, shape=shape)
            detector.create_virtual_dataset("data", layout)
        else:
            nbytes = int(np.prod(shape)) * dtype.itemsize
            detector.create_dataset("data", shape=shape, dtype=dtype, external=[(str(bob_scan), offset or 0, nbytes)])
        f["entry1/tomo_entry/data/data"] = detector["data"]


@pytest.fixture(scope="module")
def hostile(pods):
    """One login each; bob's scan and folders, alice's scan and list, and bob's snapshot before any attack."""
    bob, alice = pods.folders("bob"), pods.folders("alice")
    write_nxtomo(bob["data"] / BOB_SCAN, angles=9, rows=2, columns=16, darks=2, flats=2, seed=4242)
    pods.login("bob").get(f"{pods.url}/api/whoami")
    http = pods.login("alice")
    assert http.get(f"{pods.url}/api/whoami").status_code == 200
    tiny_scan(alice["data"] / "scan.nxs")
    simple_list(alice["processing"] / "alice_list.nxs")
    return {"http": http, "bob": bob, "alice": alice, "before": snapshot(bob),
            "container": f"{record(pods, 'alice')['pod']}-api", "uploaded": []}


def upload(pods, hostile, ref: str, build) -> str:
    """Build a crafted file on the host and upload it as alice's plain bytes; its <root>/<path>."""
    local = pods.base / "crafted" / ref
    local.parent.mkdir(parents=True, exist_ok=True)
    build(local)
    root, _, path = ref.partition("/")
    answer = hostile["http"].put(f"{pods.url}/api/files", params={"root": root, "path": path}, data=local.read_bytes())
    assert answer.status_code == 201, answer.text
    hostile["uploaded"].append(hostile["alice"][root] / path)
    return ref


def refused(pods, hostile, because=("outside",), **body) -> None:
    """hebi refuses the job: 4xx at submission, or the job ends badly, for the hostile reason."""
    http = hostile["http"]
    body = {"process_list": "processing/alice_list.nxs", "dataset": "data/scan.nxs", "mode": "full", **body}
    answer = http.post(f"{pods.url}/api/jobs", json=body, timeout=60)
    if answer.status_code != 201:
        assert 400 <= answer.status_code < 500, answer.text
        assert any(word in answer.json()["error"].lower() for word in because), answer.text
        return
    job = answer.json()
    deadline = time.monotonic() + JOB_WAIT
    while job["state"] in ("submitting", "queued", "running", "unknown") and time.monotonic() < deadline:
        time.sleep(0.5)
        job = http.get(f"{pods.url}/api/jobs/{job['id']}", params={"refresh": 1}, timeout=60).json()
    assert job["state"] in ENDED_BADLY, f"a job on a hostile input ran to the end: {job}"
    log = http.get(f"{pods.url}/api/jobs/{job['id']}/log", params={"stream": "stderr"}, timeout=60).json()["text"]
    assert any(word in (job["message"] + log).lower() for word in because), f"failed, but not for the input: {job}"


def in_pod(hostile, code: str):
    return podman("exec", hostile["container"], "python3", "-c", code)


def absent_in_pod(hostile, *paths: str, cwd: Path | None = None) -> None:
    """The kernel's view: each path (relative ones from ``cwd``) does not exist inside alice's pod."""
    for path in paths:
        stat = in_pod(hostile, f"import os; os.chdir({str(cwd or '/')!r}); os.stat({path!r})")
        assert stat.returncode != 0 and "No such file or directory" in stat.stderr, (path, stat.stdout, stat.stderr)


def bobs_unchanged_and_alices_files_hers(pods, hostile) -> None:
    assert snapshot(hostile["bob"]) == hostile["before"], "bob's folders changed"
    uid = accounts(pods)["alice"]["uid"]
    written = hostile["uploaded"] + [p for p in hostile["alice"]["output"].rglob("*") if p.is_file()]
    assert written and {p.stat().st_uid for p in written} == {uid}


@pytest.mark.parametrize("how", ["external link", "relative external link", "virtual dataset",
                                 "external raw storage"])
def test_a_data_file_pointing_into_bobs_folder_is_refused_by_hebi_and_by_the_kernel(pods, hostile, how):
    bob_scan = hostile["bob"]["data"] / BOB_SCAN
    alice_data = hostile["alice"]["data"]
    relative = relative_to_bob(alice_data, bob_scan)
    name = how.replace(" ", "_")
    ref = upload(pods, hostile, f"data/{name}.nxs", lambda p: crafted_scan(p, how, bob_scan, relative))
    absent_in_pod(hostile, str(bob_scan), str(bob_scan.parent))
    absent_in_pod(hostile, relative, cwd=alice_data)
    # Real Savu would read the file with plain h5py, bypassing hebi's checks: bob's values never come back.
    with h5py.File(bob_scan, "r") as f:
        bobs = hashlib.sha256(f[DETECTOR][()].tobytes()).hexdigest()
    read = in_pod(hostile, "import hashlib, h5py\n"
                           f"f = h5py.File({str(alice_data / (name + '.nxs'))!r}, 'r')\n"
                           f"print(hashlib.sha256(f[{DETECTOR!r}][()].tobytes()).hexdigest())")
    assert bobs not in read.stdout
    if how == "virtual dataset":  # a VDS with a missing source reads as its fill value, not as bob's data
        assert read.returncode == 0, read.stderr
    else:
        assert read.returncode != 0 and any(words in read.stderr.lower() for words in NOT_THERE), read.stderr[-1500:]
    # hebi's own check looks for the files HDF5 would open, and in the pod there are none of bob's: the job
    # is refused because what the file names is not there (outside the roots it would be refused as such).
    refused(pods, hostile, because=("outside", "not there", "no such file", "unable to open"), dataset=ref,
            output=f"output/{name}")
    bobs_unchanged_and_alices_files_hers(pods, hostile)


@pytest.mark.parametrize("which", ["dark", "flat"])
def test_an_absolute_dark_or_flat_path_into_bobs_folder_is_refused_by_hebi_and_by_the_kernel(pods, hostile, which):
    bob_scan = hostile["bob"]["data"] / BOB_SCAN
    setting = [str(bob_scan), "/" + DETECTOR, 1.0]
    ref = upload(pods, hostile, f"processing/{which}_abs.nxs", lambda p: simple_list(p, edit={"1": {which: setting}}))
    refused(pods, hostile, process_list=ref, output=f"output/{which}")
    absent_in_pod(hostile, str(bob_scan))
    read = in_pod(hostile, f"import h5py; h5py.File({str(bob_scan)!r}, 'r')")
    assert read.returncode != 0 and any(words in read.stderr.lower() for words in NOT_THERE), read.stderr[-1500:]
    bobs_unchanged_and_alices_files_hers(pods, hostile)


def test_an_output_dataset_named_into_bobs_processing_folder_is_refused_by_hebi_and_by_the_kernel(pods, hostile):
    escape = "../../../../bob/processing/X"
    ref = upload(pods, hostile, "processing/escape.nxs", lambda p: simple_list(p, edit={"2": {"out_datasets": [escape]}}))
    why = ("not a dataset name", "outside")
    refused(pods, hostile, because=why, process_list=ref, output="output/escape")
    refused(pods, hostile, because=why, process_list=ref, output="output/escape", mode="preview")
    assert not list(hostile["bob"]["processing"].glob("X*")), "the job wrote into bob's processing folder"
    absent_in_pod(hostile, str(hostile["bob"]["processing"]))
    # Were the name used as it stands, from a run folder in alice's output, the kernel has no such folder.
    write = in_pod(hostile, f"open({str(hostile['bob']['processing'] / 'X')!r}, 'w')")
    assert write.returncode != 0 and "No such file" in write.stderr, write.stderr[-1500:]
    bobs_unchanged_and_alices_files_hers(pods, hostile)
