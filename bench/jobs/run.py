"""Benchmark: hebi's job API beside the raw scheduler, per kind of cluster, in one run.

    .venv/bin/python bench/jobs/run.py [--kinds local,drmaa,slurm,...] [--sizes 10,100,1000] [--runs 5]

The kinds are those of the job suite (tests/jobs/jobs_support.py CLUSTER_KINDS), set up by the same
code as the tests: local, drmaa, slurm, slurmrest (slurmrestd with a JWT), gridengine-ssh and
slurm-ssh (the command-line backends with their commands run over SSH on a submit host: an sshd of
the bench's own on a loopback port, this same machine, so that the job suite's tests, which stop and
start the shared one, cannot cut the bench's connections), kubernetes (batch/v1 Jobs on the fake API
server, tests/fakekube, with its podman kubelet, in this process; listed up to 100 Jobs only, see
KubernetesKind). Needs root; the schedulers and sshd must be installed
(scripts/gridengine.sh, slurm.sh, sshd.sh install): what is not running is started with the project's
scripts (and stopped again at the end), and a kind whose components do not start is left out.

For each kind it starts the session's API as the launcher does (gunicorn, gthread, 1 worker, 8
threads) on loopback and measures, against the raw scheduler reached through the same path hebi uses:

- listing: the time to show the status of N jobs (10, 100, 1000, all of that user's jobs, queued or
  running) with ``GET /api/jobs`` against ONE raw query for the same jobs: ``qstat -u USER`` /
  ``squeue -u USER`` here; the same commands (``qstat -u USER -xml`` as hebi asks) over SSH through a
  ControlMaster of the bench's own, opened with hebi's own SSH options (commands.SshRunner) before the
  measure; one ``GET /slurm/v0.0.38/jobs`` with the token headers through one kept-alive
  requests.Session; one list of Jobs by hebi's label selector with the kubernetes client (raw JSON, as
  hebi reads it); for the local backend, the backend's own ``statuses()`` call. "API" is the ordinary
  request, answered from the registry that the poller keeps at most ``poll_interval`` (0.5 s here)
  behind the scheduler; "API refresh" (``?refresh=1``) asks the scheduler inside the request (for
  slurmrest: slurmrestd; for kubernetes: a list of Jobs and one of Pods).
- submission (on a fresh session, once the listing's jobs are gone): 100 ``POST /api/jobs`` (full
  mode, one at a time, over HTTP) and 100 jobs in ``POST /api/jobs/batch`` requests of 10, against 100
  raw submissions through the same path: DRMAA ``runJob`` (GridEngine, also as a reference for local
  and slurm), ``sbatch``, ``qsub``/``sbatch`` over SSH (the bench's ControlMaster), slurmrestd's
  ``POST job/submit``, the kubernetes client's create of an equivalent Job (kube_jobs.make_job), and
  for local ``LocalBackend.submit``; all interleaved in blocks of 10 so that each meets the scheduler
  in the same state (its queue grows as they go).

Jobs must not really run, or a thousand of them would swamp the machine: hebi's jobs are the fake
Savu idling for an hour, the raw ones ``sleep 3600``, and the schedulers queue what their slots cannot
hold. For kubernetes ``jobs.kubernetes.max_parallel`` is 1, so all but one of hebi's Jobs are created
suspended (no Pod), and the raw Jobs are all created suspended: both sides do the same work at the API
server. (hebi lists the user's Jobs before each create, to count the running ones: that list is part
of its cost.) The fake API server runs in this process, in a thread of its own; the client waits on
the socket meanwhile, so both sides pay the same server.

Each listing cell is the median of ``--runs``; the submission cells are totals. The bench cancels
only its own jobs (by id: tests of others may share the schedulers) and talks only to 127.0.0.1.
Client, API and schedulers share the machine's cores.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def gridengine_env() -> dict[str, str]:
    """``scripts/gridengine.sh env``: SGE_ROOT, SGE_CELL and what libdrmaa needs (empty without it)."""
    try:
        done = subprocess.run([str(REPO / "scripts" / "gridengine.sh"), "env"], capture_output=True, text=True,
                              timeout=30)
    except OSError:
        return {}
    pairs = (pair.partition("=") for line in done.stdout.splitlines() if done.returncode == 0
             for pair in line.removeprefix("export ").split())
    return {key: value for key, _, value in pairs if key}


if "GLIBC_TUNABLES" not in os.environ and os.environ.get("HEBI_BENCH_REEXEC") != "1":
    # libdrmaa needs GLIBC_TUNABLES from the start of the process: start again with GridEngine's settings.
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **gridengine_env(), "HEBI_BENCH_REEXEC": "1"})

sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "jobs")]
from jobs_support import CLUSTER_KINDS, USER, ApiProcess, dataset, write_session  # noqa: E402

#: Jobs per block of the interleaved submissions, and per POST /api/jobs/batch.
BLOCK = 10


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_time(action, runs: int) -> float:
    return statistics.median(timed(action) for _ in range(runs))


def run_quiet(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def checked(done: subprocess.CompletedProcess) -> str:
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, done.args[-1:]))}: {(done.stderr or done.stdout).strip()[-300:]}")
    return done.stdout


class Unavailable(Exception):
    """A component of a kind is not running and does not start: the kind is left out."""


# -- the components, as the job suite's fixtures give them --------------------------------------------


class Fixtures:
    """What the kinds' setups (CLUSTER_KINDS[...].setup) ask of pytest's ``request``, outside pytest: the
    same components, started by the project's scripts when not running, and stopped at the end only
    when this benchmark started them."""

    def __init__(self, base: Path):
        self.base = base
        self.values: dict[str, object] = {}
        self.stops: list = []

    def getfixturevalue(self, name: str):
        if name not in self.values:
            self.values[name] = getattr(self, f"_{name}")()
        return self.values[name]

    def close(self) -> None:
        for stop in reversed(self.stops):
            stop()

    def _script(self, script: str, what: str, status: str = "status", start: str = "start",
                stop: str = "stop", env: dict | None = None) -> None:
        def run(action: str) -> subprocess.CompletedProcess:
            return subprocess.run([str(REPO / "scripts" / script), action], capture_output=True, text=True,
                                  timeout=240, env=env)
        if run(status).returncode == 0:
            return
        done = run(start)
        if done.returncode != 0:
            raise Unavailable(f"{what} does not start (scripts/{script} {start}): {(done.stderr or done.stdout)[-300:]}")
        self.stops.append(lambda: run(stop))

    def _gridengine(self) -> dict[str, str]:
        self._script("gridengine.sh", "GridEngine")
        return gridengine_env()

    def _slurm(self) -> dict:
        self._script("slurm.sh", "Slurm")
        return {}

    def _sshd(self) -> dict[str, str]:
        """An sshd of the bench's own (its own port and folder): the job suite's tests stop and start
        the shared one (a submit host going down), which would cut the bench's connections."""
        from jobs_support import _free_port
        folder = Path("/var/lib") / f"hebi-sshd-bench-{os.getpid()}"
        env = dict(os.environ, HEBI_SSHD_PORT=str(_free_port()), HEBI_SSHD_DIR=str(folder))
        self.stops.insert(0, lambda: shutil.rmtree(folder, ignore_errors=True))  # after the stop
        self._script("sshd.sh", "sshd", env=env)
        done = subprocess.run([str(REPO / "scripts" / "sshd.sh"), "env"], capture_output=True, text=True, env=env)
        return dict(pair.partition("=")[::2] for pair in checked(done).removeprefix("export ").split())

    def _slurmrest(self):
        from support_slurmrest import PORT, SlurmRest
        self.getfixturevalue("slurm")
        self._script("slurm.sh", "slurmrestd", "status-restd", "start-restd", "stop-restd",
                     env=dict(os.environ, HEBI_SLURMRESTD_PORT=str(PORT)))
        return SlurmRest(f"http://127.0.0.1:{PORT}")

    def _kube_jobs_cluster(self):
        from fakekube import FakeCluster
        from support_kube import runner_image
        if os.geteuid() != 0 or not shutil.which("podman"):
            raise Unavailable("the podman kubelet needs root and podman")
        image = runner_image()
        cluster = FakeCluster(self.base / "kube", node_cpu="4", node_memory="8Gi").__enter__()
        cluster.runner_image = image
        self.stops.append(lambda: cluster.__exit__(None, None, None))
        return cluster


# -- the raw submissions, one class per path --------------------------------------------------------


class RawDrmaa:
    """runJob on full.q with the same kind of command, from one session opened beforehand."""

    label = "DRMAA runJob"

    def __init__(self, base: Path):
        import drmaa
        self.drmaa = drmaa
        self.session = drmaa.Session()
        self.session.initialize()
        self.template = template = self.session.createJobTemplate()
        template.remoteCommand = "/bin/sleep"
        template.args = ["3600"]
        template.jobName = "bench-raw"
        template.workingDirectory = str(base)
        template.outputPath = f":{base}/raw.out"
        template.errorPath = f":{base}/raw.err"
        template.nativeSpecification = "-q full.q -l h_rt=01:00:00"
        self.ids: list[str] = []

    def submit(self, n: int) -> float:
        start = time.perf_counter()
        self.ids += [self.session.runJob(self.template) for _ in range(n)]
        return time.perf_counter() - start

    def close(self) -> None:
        for job_id in self.ids:
            self.session.control(job_id, self.drmaa.JobControlAction.TERMINATE)
        self.session.exit()


class RawCommand:
    """A submission command through a runner (commands.LocalRunner here, or SshRunner: over SSH), its
    job id on stdout; cancelled by ``cancel`` + the ids."""

    def __init__(self, label: str, runner, argv: list[str], cancel: list[str], env: dict | None = None):
        self.label, self.runner, self.argv, self.cancel, self.env = label, runner, argv, cancel, env
        self.ids: list[str] = []

    def submit(self, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            self.ids.append(checked(self.runner.run(self.argv, env=self.env)).strip().split(";")[0].split(".")[0])
        return time.perf_counter() - start

    def close(self) -> None:
        for first in range(0, len(self.ids), 200):
            self.runner.run([*self.cancel, *self.ids[first:first + 200]], env=self.env)


class RawLocal:
    label = "LocalBackend.submit"

    def __init__(self, base: Path):
        from hebi_api.jobs.backend import JobSpec
        from hebi_api.jobs.local import LocalBackend
        from hebi_common.config import LocalJobsConfig
        self.backend = LocalBackend(base / "raw-local", LocalJobsConfig(workers=1))
        self.spec = JobSpec(command=["sleep", "3600"], workdir=base, name="bench-raw", stdout=base / "raw.out",
                            stderr=base / "raw.err", time_limit=3600)
        self.ids: list[str] = []

    def submit(self, n: int) -> float:
        start = time.perf_counter()
        self.ids += [self.backend.submit(self.spec) for _ in range(n)]
        return time.perf_counter() - start

    def close(self) -> None:
        from hebi_api.jobs.backend import JobRef
        for job_id in self.ids:
            self.backend.cancel(JobRef(job_id, "bench-raw", 0.0))
        time.sleep(1)
        self.backend.dispatch()
        self.backend.close()


class RawRest:
    """slurmrestd's ``POST job/submit`` of a ``sleep`` script, through one kept-alive session."""

    label = "slurmrestd POST job/submit"

    def __init__(self, kind: SlurmRestKind, base: Path):
        self.kind = kind
        self.job = {"script": "#!/bin/sh\nexec sleep 3600\n", "job": {
            "name": "bench-raw", "partition": "full", "time_limit": 60, "cpus_per_task": 1,
            "current_working_directory": str(base), "standard_output": f"{base}/raw.out",
            "standard_error": f"{base}/raw.err", "environment": {"PATH": "/usr/bin:/bin"}}}
        self.ids: list[str] = []

    def submit(self, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            answer = self.kind.http.post(f"{self.kind.url}/slurm/v0.0.38/job/submit", json=self.job,
                                         headers=self.kind.headers, timeout=60)
            body = answer.json()
            assert body.get("job_id") and not body.get("errors"), answer.text[:300]
            self.ids.append(str(body["job_id"]))
        return time.perf_counter() - start

    def close(self) -> None:
        for job_id in self.ids:
            self.kind.http.delete(f"{self.kind.url}/slurm/v0.0.38/job/{job_id}", headers=self.kind.headers, timeout=60)


class RawKubeJob:
    """The kubernetes client's create of the Job hebi would make for the same job (kube_jobs.make_job,
    suspended), under a user label of its own so that hebi never counts or lists it."""

    label = "client create Job"

    def __init__(self, kind: KubernetesKind, base: Path):
        from support_kube import JOB_UID

        from hebi_api.jobs.backend import JobSpec
        from hebi_common.config import KubernetesJobsConfig
        from hebi_common.confine import JOB_ROOTS_VARIABLE
        self.kind = kind
        self.config = KubernetesJobsConfig.model_validate(kind.jobs["kubernetes"])
        roots = {name: {"path": str(base / "roots" / name), "writable": name != "data"}
                 for name in ("data", "processing", "output")}
        self.spec = JobSpec(command=list(kind.jobs["command"]), workdir=base / "roots" / "output", name="",
                            stdout=base / "raw.out", stderr=base / "raw.err", queue="full", time_limit=600,
                            env={JOB_ROOTS_VARIABLE: json.dumps(roots)})
        self.uid = JOB_UID
        self.names: list[str] = []

    def submit(self, n: int) -> float:
        from dataclasses import replace

        from hebi_api.jobs.kube_jobs import make_job
        start = time.perf_counter()
        for _ in range(n):
            spec = replace(self.spec, name=f"hebi-bench-raw-{len(self.names)}")
            body = make_job(spec, self.config, user="bench-raw", uid=self.uid, gid=self.uid, suspend=True)
            created = self.kind.batch.create_namespaced_job(self.kind.namespace, body, _preload_content=False)
            self.names.append(json.loads(created.data)["metadata"]["name"])
        return time.perf_counter() - start

    def close(self) -> None:
        for name in self.names:
            self.kind.batch.delete_namespaced_job(name, self.kind.namespace, _preload_content=False)


# -- the kinds: setup, raw query and raw submissions ----------------------------------------------------


class Kind:
    """One kind of CLUSTER_KINDS: ``setup`` as the job suite does it, then one raw query of the same
    jobs and the raw submissions, through the same path as hebi's backend."""

    name = ""
    #: The raw query, as the tables name it.
    query = ""
    #: The largest listing size that runs in reasonable time (None: any).
    top_size: int | None = None

    def __init__(self, fixtures: Fixtures):
        self.fixtures = fixtures

    def setup(self, base: Path) -> tuple[dict[str, str], dict]:
        """The API's environment and ``jobs`` overrides for a session in ``base``."""
        self.base = base
        self.env, self.jobs = CLUSTER_KINDS[self.name].setup(self.fixtures, base)
        return self.env, self.jobs

    def raw_query(self) -> None:
        raise NotImplementedError

    def raw_submitters(self) -> list:
        raise NotImplementedError

    def teardown(self) -> None:
        """Let go of what ``setup`` opened (before the session's folder goes)."""


class LocalKind(Kind):
    name, query = "local", "statuses()"

    def raw_query(self) -> None:
        from hebi_api.jobs.backend import JobRef
        from hebi_api.jobs.local import LocalBackend
        from hebi_common.config import LocalJobsConfig
        spool = self.base / USER / "state" / "local-jobs"
        backend = LocalBackend(spool, LocalJobsConfig(workers=2))
        backend.statuses([JobRef(folder.name, "", 0.0) for folder in spool.iterdir() if folder.is_dir()])

    def raw_submitters(self) -> list:
        return [*drmaa_reference(self.fixtures, self.base), RawLocal(self.base)]


def drmaa_reference(fixtures: Fixtures, base: Path) -> list:
    """Raw DRMAA runJob, the issue's reference figure, when GridEngine runs."""
    try:
        fixtures.getfixturevalue("gridengine")
    except Unavailable:
        return []
    return [RawDrmaa(base)]


class DrmaaKind(Kind):
    name, query = "drmaa", "qstat -u"

    def raw_query(self) -> None:
        run_quiet(["qstat", "-u", getpass.getuser()])

    def raw_submitters(self) -> list:
        return [RawDrmaa(self.base)]


def sbatch_argv(base: Path) -> list[str]:
    script = base / "raw.sh"
    script.write_text("#!/bin/sh\nexec sleep 3600\n")
    return ["sbatch", "--parsable", "-J", "bench-raw", "-p", "full", "-t", "60", "-D", str(base),
            "-o", f"{base}/raw.out", str(script)]


class SlurmKind(Kind):
    name, query = "slurm", "squeue -u"

    def raw_query(self) -> None:
        run_quiet(["squeue", "-u", getpass.getuser()])

    def raw_submitters(self) -> list:
        from hebi_api.jobs.commands import LocalRunner
        return [*drmaa_reference(self.fixtures, self.base),
                RawCommand("sbatch", LocalRunner("sbatch"), sbatch_argv(self.base), ["scancel"])]


class SshKind(Kind):
    """The command-line backends over SSH: the raw commands go through a ControlMaster of the bench's
    own (commands.SshRunner with the session's jobs.ssh), opened before anything is measured."""

    def setup(self, base):
        from hebi_api.jobs.commands import SshRunner
        from hebi_common.config import SshJobsConfig
        super().setup(base)
        self.runner = SshRunner(SshJobsConfig.model_validate(self.jobs["ssh"]), base / "raw-ssh", "bench")
        checked(self.runner.run(["true"]))
        return self.env, self.jobs

    def teardown(self) -> None:
        self.runner.close()


class GridEngineSshKind(SshKind):
    name, query = "gridengine-ssh", "qstat -u -xml over ssh"

    def sge_env(self) -> dict[str, str]:
        return {key.upper(): value for key, value in self.jobs["gridengine"].items()}

    def raw_query(self) -> None:
        checked(self.runner.run(["qstat", "-u", self.runner.user, "-xml"], env=self.sge_env()))

    def raw_submitters(self) -> list:
        base = self.base
        argv = ["qsub", "-terse", "-N", "bench-raw", "-q", "full.q", "-l", "h_rt=01:00:00", "-wd", str(base),
                "-o", f":{base}/raw.out", "-e", f":{base}/raw.err", "-b", "y", "-shell", "n", "/bin/sleep", "3600"]
        return [RawCommand("qsub over ssh", self.runner, argv, ["qdel"], env=self.sge_env())]


class SlurmSshKind(SshKind):
    name, query = "slurm-ssh", "squeue -u over ssh"

    def raw_query(self) -> None:
        checked(self.runner.run(["squeue", "-u", self.runner.user]))

    def raw_submitters(self) -> list:
        return [RawCommand("sbatch over ssh", self.runner, sbatch_argv(self.base), ["scancel"])]


class SlurmRestKind(Kind):
    name, query = "slurmrest", "GET jobs (slurmrestd)"

    def setup(self, base):
        import requests
        super().setup(base)
        config = self.jobs["slurmrest"]
        self.url = config["url"]
        token = Path(config["token_file"]).read_text().strip()
        self.headers = {"X-SLURM-USER-NAME": getpass.getuser(), "X-SLURM-USER-TOKEN": token}
        self.http = requests.Session()
        self.raw_query()  # the kept-alive connection, as hebi's backend has one
        return self.env, self.jobs

    def raw_query(self) -> None:
        answer = self.http.get(f"{self.url}/slurm/v0.0.38/jobs", headers=self.headers, timeout=60)
        assert answer.status_code == 200, answer.text[:300]

    def raw_submitters(self) -> list:
        return [RawRest(self, self.base)]

    def teardown(self) -> None:
        self.http.close()


class KubernetesKind(Kind):
    """Listing sizes stop at 100: before each create hebi lists all of the user's Jobs (to count the
    running ones against max_parallel), so filling the queue costs time quadratic in its length; on 2
    busy cores 1000 Jobs took over 7 minutes to submit (and that run then failed on an answer of the
    API without its ``total``, not looked into further)."""

    name, query = "kubernetes", "list Jobs by label"
    top_size = 100

    def setup(self, base):
        from kubernetes import client
        from kubernetes import config as kube_config
        super().setup(base)
        self.jobs["kubernetes"]["max_parallel"] = 1
        cluster = self.fixtures.getfixturevalue("kube_jobs_cluster")
        self.namespace = cluster.namespace
        configuration = client.Configuration()
        kube_config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
        self.api = client.ApiClient(configuration)
        self.batch = client.BatchV1Api(self.api)
        self.raw_query()
        return self.env, self.jobs

    def raw_query(self) -> None:
        from hebi_api.jobs.kube_jobs import user_selector
        answer = self.batch.list_namespaced_job(self.namespace, label_selector=user_selector(USER),
                                                _preload_content=False)
        json.loads(answer.data)

    def raw_submitters(self) -> list:
        return [RawKubeJob(self, self.base)]

    def teardown(self) -> None:
        self.api.close()


KINDS = {kind.name: kind for kind in (LocalKind, DrmaaKind, SlurmKind, SlurmRestKind, GridEngineSshKind,
                                      SlurmSshKind, KubernetesKind)}


# -- the measures -----------------------------------------------------------------------------------


class Bench:
    """One session of ``kind`` in a folder of its own, with its API running."""

    def __init__(self, kind: Kind, runs: int):
        self.kind = kind
        self.runs = runs
        self.base = Path(tempfile.mkdtemp(prefix=f"hebi-bench-jobs-{kind.name}-", dir="/tmp"))
        try:
            env, overrides = kind.setup(self.base)
            config = write_session(self.base, kind.name, **{
                "local": {"workers": 2, "kill_grace": 1}, **overrides, "poll_interval": 0.5, "lost_after": 600})
            self.api = ApiProcess(config, env).start()
        except BaseException:
            kind.teardown()
            shutil.rmtree(self.base, ignore_errors=True)
            raise
        self.data = dataset(self.base, "idle.json", seconds=3600, steps=1)
        self.count = 0

    def submit(self, n: int) -> None:
        for _ in range(n):
            self.api.submit(self.data, mode="full", output="output/bench")
        self.count += n

    def submit_batch(self, n: int) -> None:
        body = {"process_list": "processing/tomo.nxs", "dataset": self.data, "output": "output/bench", "mode": "full"}
        answer = self.api.post("/api/jobs/batch", json={"jobs": [body] * n})
        assert answer.status_code == 201 and len(answer.json()["jobs"]) == n, answer.text[:300]
        self.count += n

    def fill(self, n: int) -> None:
        """``n`` more jobs, quickly (batches): not measured."""
        for first in range(0, n, 100):
            self.submit_batch(min(100, n - first))

    def api_list(self, refresh: bool = False) -> None:
        # The whole body arrives inside the measure; checking it (parsing the JSON) comes after.
        self.last = self.api.get("/api/jobs", params={"limit": 10000, **({"refresh": 1} if refresh else {})})

    def check(self) -> None:
        assert self.last.status_code == 200 and self.last.json().get("total") == self.count, \
            f"HTTP {self.last.status_code}: {self.last.text[:300]}"

    def listing(self, size: int) -> dict:
        self.fill(size - self.count)
        self.api_list(refresh=True)  # the new jobs' first poll is not part of any measure
        self.check()
        time.sleep(1.0)
        fresh = median_time(lambda: self.api_list(refresh=True), self.runs)
        self.check()
        cached = median_time(self.api_list, self.runs)
        self.check()
        self.kind.raw_query()
        raw = median_time(self.kind.raw_query, self.runs)
        return {"size": size, "raw": raw, "fresh": fresh, "cached": cached}

    def submissions(self, n: int) -> dict:
        """API one by one, API batches (one request per block), and each raw path, interleaved in blocks,
        so that all meet the scheduler in the same state."""
        raws = self.kind.raw_submitters()
        totals = {"api": 0.0, "batch": 0.0, **{raw.label: 0.0 for raw in raws}}
        try:
            for block in range(0, n, BLOCK):
                size = min(BLOCK, n - block)
                totals["api"] += timed(lambda: self.submit(size))
                totals["batch"] += timed(lambda: self.submit_batch(size))
                for raw in raws:
                    totals[raw.label] += raw.submit(size)
        finally:
            for raw in raws:
                raw.close()
        return {"n": n, "api": totals.pop("api"), "batch": totals.pop("batch"), "raw": totals}

    def active(self, params: dict) -> dict:
        """The list of active jobs; a refusal (seen once under load, cause unknown) is said and asked again."""
        for _ in range(10):
            answer = self.api.get("/api/jobs", params=params)
            if answer.status_code == 200:
                return answer.json()
            print(f"GET /api/jobs: HTTP {answer.status_code}: {answer.text[:300]}", flush=True)
            time.sleep(1)
        raise RuntimeError("the API does not list the jobs: they may be left behind")

    def close(self) -> None:
        """Cancel the benchmark's own jobs (never all of the user's: tests may share the scheduler) and
        wait until the scheduler has let go of them (a qmaster holding a thousand jobs is slower)."""
        try:
            active = {"state": "submitting,queued,running", "limit": 10000}
            for job in self.active(active)["jobs"]:
                answer = self.api.post(f"/api/jobs/{job['id']}/cancel")
                if answer.status_code != 200:
                    print(f"cancel {job['id']}: HTTP {answer.status_code}: {answer.text[:200]}", flush=True)
            deadline = time.monotonic() + 300
            while self.active(dict(active, limit=1))["total"] and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            self.api.stop()
            self.kind.teardown()
            shutil.rmtree(self.base, ignore_errors=True)


def measure(kind: Kind, sizes: list[int], submissions: int, runs: int) -> tuple[dict, list[dict]]:
    bench = Bench(kind, runs)
    try:
        listings = [bench.listing(size) for size in sizes]
    finally:
        bench.close()
    # Submissions on a fresh session and an empty queue: a qmaster holding a thousand pending jobs
    # answers runJob several times slower, for the raw calls and the API alike.
    bench = Bench(kind, runs)
    try:
        submitted = bench.submissions(submissions)
    finally:
        bench.close()
    return submitted, listings


def print_tables(rows: list, runs: int, submissions: int) -> None:
    print(f"\nListing the status of N jobs (median of {runs}; ms)")
    print(f"{'kind':14} {'N':>5} {'raw query':>28} {'API':>8} {'ratio':>6} {'API refresh':>12} {'ratio':>6}")
    for kind, _, listings in rows:
        for cell in listings:
            print(f"{kind.name:14} {cell['size']:5d} {kind.query:>23} {cell['raw'] * 1000:4.0f} "
                  f"{cell['cached'] * 1000:8.1f} {cell['cached'] / cell['raw']:5.2f}x "
                  f"{cell['fresh'] * 1000:12.1f} {cell['fresh'] / cell['raw']:5.2f}x")
    print(f"\n{submissions} submissions (ms per job). API: one POST /api/jobs per job; batch: one POST"
          f" /api/jobs/batch per block of {BLOCK} jobs; ratios against the raw submission per job")
    print(f"{'kind':14} {'API':>8} {'batch':>8} {'raw submission':>27} {'raw':>7} {'API':>6} {'batch':>6}")
    for kind, cell, _ in rows:
        n = cell["n"]
        for label, raw in cell["raw"].items():
            print(f"{kind.name:14} {cell['api'] * 1000 / n:8.2f} {cell['batch'] * 1000 / n:8.2f} {label:>27} "
                  f"{raw * 1000 / n:7.2f} {cell['api'] / raw:5.2f}x {cell['batch'] / raw:5.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", "--backends", default=",".join(KINDS), help=f"of {', '.join(KINDS)}")
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    if os.geteuid() != 0:
        print("needs root: the schedulers, sshd and the podman kubelet are started as root", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="hebi-bench-jobs-", dir="/tmp"))
    fixtures = Fixtures(scratch)
    rows = []
    try:
        for name in args.kinds.split(","):
            kind = KINDS[name](fixtures)
            kind_sizes = [size for size in sizes if kind.top_size is None or size <= kind.top_size]
            if kind_sizes != sizes:
                print(f"{name}: listing sizes above {kind.top_size} left out (see {type(kind).__name__})")
            for attempt in (1, 2):
                started = time.monotonic()
                try:
                    rows.append((kind, *measure(kind, kind_sizes, args.submissions, args.runs)))
                except Unavailable as err:
                    print(f"{name}: left out: {err}", flush=True)
                    break
                except Exception as err:  # noqa: BLE001 - e.g. a shared component stopped by others' tests
                    # The components are looked at again (and started when down) for the second try.
                    print(f"{name}: attempt {attempt} failed: {str(err)[:300]}", flush=True)
                    fixtures.values.clear()
                    continue
                print(f"{name}: measured in {time.monotonic() - started:.0f} s", flush=True)
                print_tables(rows[-1:], args.runs, args.submissions)
                break
    finally:
        fixtures.close()
        shutil.rmtree(scratch, ignore_errors=True)
    print("\nAll kinds")
    print_tables(rows, args.runs, args.submissions)
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
