"""Jobs sent to a submit host over SSH (jobs.ssh), on GridEngine and on Slurm: the session's API as a
real process, a real sshd on a loopback port (scripts/sshd.sh) as the submit host.

A scientist whose facility's submit host goes down is told so (503, the host named) and loses
nothing; names that would mean something to a shell reach the scheduler as they are; and the API does
not log in again for every scheduler command (one ControlMaster connection carries them all).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests
from jobs_support import ApiProcess, _free_port, dataset, gridengine, slurm, write_session  # noqa: F401 - session fixtures, used through request.getfixturevalue
from support_ssh import ssh_jobs, sshd, sshd_logins, sshd_script, sshd_sessions_from, start_sshd  # noqa: F401 - sshd: a session fixture

ENDED = {"finished", "failed", "lost", "cancelled", "timeout"}


class SshCluster:
    def __init__(self, name: str, base: Path, api: ApiProcess, sshd: dict[str, str]):
        self.name = name
        self.base = base
        self.api = api
        self.sshd = sshd

    @property
    def state_dir(self) -> Path:
        return self.base / "alice" / "state"


@pytest.fixture(scope="module")
def submit_host(request):
    """An sshd of this module's own, beside the shared one (these tests stop it; the job suite's and
    anyone else's stay up, and the logins it counts are only this module's)."""
    port = _free_port()
    settings = {"HEBI_SSHD_PORT": str(port),
                "HEBI_SSHD_DIR": str(Path(request.getfixturevalue("sshd")["HEBI_SSHD_LOG"]).parent / f"test-{port}")}
    try:
        yield start_sshd(settings)
    finally:
        sshd_script("stop", settings)
        shutil.rmtree(settings["HEBI_SSHD_DIR"], ignore_errors=True)


@pytest.fixture(scope="module", params=["gridengine-ssh", "slurm-ssh"])
def ssh_cluster(request, submit_host):
    base = Path(tempfile.mkdtemp(prefix=f"hebi-{request.param}-", dir="/tmp"))
    if request.param == "gridengine-ssh":
        grid = request.getfixturevalue("gridengine")
        jobs = ssh_jobs(submit_host, gridengine={"sge_root": grid["SGE_ROOT"], "sge_cell": grid["SGE_CELL"]})
    else:
        request.getfixturevalue("slurm")
        jobs = ssh_jobs(submit_host)
    api = ApiProcess(write_session(base, request.param, **jobs)).start()
    try:
        yield SshCluster(request.param, base, api, submit_host)
    finally:
        sshd_script("start", submit_host)  # whatever a failed test left, the next kind needs the host up
        api.close(request, request.param)
        shutil.rmtree(base, ignore_errors=True)


def masters(socket: Path) -> list[int]:
    """Processes of the ssh ControlMaster serving ``socket`` (ssh titles it "ssh: SOCKET [mux]")."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
                if title.startswith(b"ssh: ") and str(socket).encode() in title and b"[mux]" in title:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def client_ports(pid: int, sshd_port: int) -> list[int]:
    """Local ports of the TCP connections process ``pid`` holds to the sshd."""
    listing = subprocess.run(["ss", "-tnpH", "state", "established", f"( dport = :{sshd_port} )"],
                             capture_output=True, text=True, check=True).stdout
    return [int(line.split()[2].rsplit(":", 1)[1]) for line in listing.splitlines() if f"pid={pid}," in line]


def test_one_connection_carries_every_scheduler_command(ssh_cluster):
    api = ssh_cluster.api
    first = api.submit(dataset(ssh_cluster.base, "first.nxs", seconds=0.2, steps=1))
    api.wait(first["id"], ENDED, timeout=90)
    sockets = list(ssh_cluster.state_dir.glob("ssh-*"))
    assert len(sockets) == 1 and sockets[0].is_socket(), "the ControlMaster's socket is in the session's state dir"
    [master] = masters(sockets[0])
    [port] = client_ports(master, int(ssh_cluster.sshd["HEBI_SSHD_PORT"]))
    logins, sessions = sshd_logins(ssh_cluster.sshd), sshd_sessions_from(ssh_cluster.sshd, port)
    jobs = [api.submit(dataset(ssh_cluster.base, f"many-{number}.nxs", seconds=0.5, steps=1)) for number in range(4)]
    for _ in range(10):  # each a scheduler query now, not an answer from the registry
        assert api.get("/api/jobs", params={"refresh": 1}).status_code == 200
    assert all(mode["available"] for mode in api.get("/api/cluster").json()["modes"])
    for job in jobs:
        assert api.wait(job["id"], ENDED, timeout=90)["state"] == "finished"
    assert sshd_logins(ssh_cluster.sshd) == logins, "no new login: every command rides the same connection"
    assert masters(sockets[0]) == [master], "the same ControlMaster process"
    assert client_ports(master, int(ssh_cluster.sshd["HEBI_SSHD_PORT"])) == [port], "with its one TCP connection"
    assert sshd_sessions_from(ssh_cluster.sshd, port) >= sessions + 4 + 10, "which carried the commands"


def test_names_a_shell_would_act_on_reach_the_scheduler_as_they_are(ssh_cluster):
    api = ssh_cluster.api
    canary = f"hc-{uuid.uuid4().hex[:6]}"
    odd = f"q'\"$(touch {canary});touch {canary};`touch {canary}` * & |x $HOME"
    assert len(odd) <= 100  # the longest name the API takes
    roots = ssh_cluster.base / "roots"
    shutil.copy(roots / "processing" / "tomo.nxs", roots / "processing" / f"{odd}.nxs")
    job = api.submit(dataset(ssh_cluster.base, f"{odd}.nxs", seconds=0.2, steps=1), output=f"output/{odd}",
                     name=odd, process_list=f"processing/{odd}.nxs")
    done = api.wait(job["id"], ENDED, timeout=90)
    assert done["state"] == "finished", done
    assert done["name"] == odd and done["run_folder"].startswith(f"output/{odd}/")
    assert (roots / done["run_folder"] / "result_processed.nxs").exists()
    stdout = api.get(f"/api/jobs/{job['id']}/log", params={"stream": "stdout"}).json()["text"]
    assert f"data/{odd}.nxs" in stdout, "the job got the path as the user wrote it"
    # Nothing ran: no canary where a shell would have made it (the login's home, the job's folders).
    places = [Path.home(), Path("/tmp"), *roots.rglob("*")]
    assert not [place for place in places if place.is_dir() and (place / canary).exists()]


def test_a_line_break_in_a_name_or_path_is_refused_before_any_command(ssh_cluster):
    """Refused with the field named, and nothing recorded: GridEngine could not even hand such a path
    to a job (it keeps a job's arguments one to a line)."""
    api = ssh_cluster.api
    processing = ssh_cluster.base / "roots" / "processing"
    shutil.copy(processing / "tomo.nxs", processing / "two\nlines.nxs")
    before = api.get("/api/jobs", params={"limit": 1}).json()["total"]
    good = {"process_list": "processing/tomo.nxs", "output": "output/runs", "mode": "full",
            "dataset": dataset(ssh_cluster.base, "plain.nxs", seconds=0.2, steps=1)}
    for field, value in (("process_list", "processing/two\nlines.nxs"), ("name", "first\nsecond"),
                         ("output", "output/two\nlines")):
        answer = api.post("/api/jobs", json={**good, field: value})
        assert answer.status_code == 400, answer.text
        assert f"'{field}'" in answer.json()["error"] and "U+000A" in answer.json()["error"]
    assert api.get("/api/jobs", params={"limit": 1}).json()["total"] == before


def test_the_submit_host_down_answers_503_and_loses_nothing(ssh_cluster):
    api = ssh_cluster.api
    job = api.submit(dataset(ssh_cluster.base, "through-outage.nxs", seconds=10, steps=10))
    api.wait(job["id"], "running", timeout=60)
    before = api.get("/api/jobs", params={"limit": 1}).json()["total"]
    assert sshd_script("stop", ssh_cluster.sshd).returncode == 0
    try:
        refused = api.post("/api/jobs", json={"process_list": "processing/tomo.nxs", "mode": "full",
                                              "dataset": "data/through-outage.nxs", "output": "output/runs"})
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error.startswith("cluster unavailable") and "submit host root@127.0.0.1" in error, error
        assert "Connection refused" in error, error
        listing = api.get("/api/jobs", params={"refresh": 1}).json()
        assert listing["total"] == before, "a refused submission must leave no job behind"
        assert listing["cluster"]["available"] is False
        assert next(item for item in listing["jobs"] if item["id"] == job["id"])["state"] == "running"
        modes = api.get("/api/cluster").json()["modes"]
        assert not any(mode["available"] for mode in modes)
        assert all("submit host" in mode["reason"] for mode in modes), modes
    finally:
        assert sshd_script("start", ssh_cluster.sshd).returncode == 0
    # The job ran on while the host was away; its end is seen once the host answers.
    done = api.wait(job["id"], ENDED, timeout=120)
    assert done["state"] == "finished" and done["end"]["exit_code"] == 0, done
    assert api.get("/api/jobs").json()["cluster"]["available"] is True
    again = api.submit(dataset(ssh_cluster.base, "after-outage.nxs", seconds=0.2, steps=1))
    assert api.wait(again["id"], ENDED, timeout=90)["state"] == "finished"
    assert api.get("/api/jobs", params={"limit": 1}).json()["total"] == before + 1
