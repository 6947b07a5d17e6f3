"""Benchmark: hebi's job API beside the raw scheduler, per backend, in one run.

    .venv/bin/python bench/jobs/run.py [--backends local,drmaa,slurm] [--sizes 10,100,1000] [--runs 5]

Needs root and the real schedulers (scripts/gridengine.sh and scripts/slurm.sh install + start); a
backend whose scheduler is not running is left out. For each backend it starts the session's API as the
launcher does (gunicorn, gthread, 1 worker, 8 threads) on loopback and measures:

- listing: the time to show the status of N jobs (10, 100, 1000, all of that user's jobs, queued or
  running) with ``GET /api/jobs`` against ONE raw scheduler query for the same jobs (``qstat -u USER``
  or ``squeue -u USER``; for the local backend, the backend's own ``statuses()`` call). "API" is the
  ordinary request, answered from the registry that the poller keeps at most ``poll_interval`` (0.5 s
  here) behind the scheduler; "API refresh" (``?refresh=1``) asks the scheduler inside the request.
- submission (on a fresh session, once the listing's jobs are gone from the scheduler):
  100 ``POST /api/jobs`` (full mode, one at a time, over HTTP) against 100 raw DRMAA
  ``runJob`` calls on full.q (for Slurm also 100 raw ``sbatch``, for local 100 raw ``LocalBackend.submit``),
  interleaved in blocks of 10 so that each meets the scheduler in the same state.

Each listing cell is the median of ``--runs``; the submission cells are totals. All jobs the benchmark
made are cancelled at the end. Client, API and scheduler share the machine's 2 cores.
"""
from __future__ import annotations

import argparse
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
DRMAA_ENV = {"SGE_ROOT": "/var/lib/gridengine", "SGE_CELL": "default",
             "DRMAA_LIBRARY_PATH": "/usr/lib/gridengine-drmaa/lib/libdrmaa.so.1.0",
             "GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=16384"}

if "GLIBC_TUNABLES" not in os.environ:  # libdrmaa needs it from the start of the process: start again with it
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **DRMAA_ENV})

sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "jobs")]
from jobs_support import ApiProcess, dataset, write_session  # noqa: E402


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def median_time(action, runs: int, before=None) -> float:
    times = []
    for _ in range(runs):
        if before:
            before()
        times.append(timed(action))
    return statistics.median(times)


def run_quiet(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def scheduler_running(backend: str) -> bool:
    if backend == "local":
        return True
    script = {"drmaa": "gridengine.sh", "slurm": "slurm.sh"}[backend]
    return subprocess.run([str(REPO / "scripts" / script), "status"], capture_output=True).returncode == 0


class Bench:
    def __init__(self, backend: str, runs: int):
        self.backend = backend
        self.runs = runs
        self.base = Path(tempfile.mkdtemp(prefix=f"hebi-bench-jobs-{backend}-", dir="/tmp"))
        config = write_session(self.base, backend, poll_interval=0.5, lost_after=600,
                               local={"workers": 2, "kill_grace": 1})
        self.api = ApiProcess(config, DRMAA_ENV if backend == "drmaa" else {}).start()
        self.data = dataset(self.base, "idle.json", seconds=3600, steps=1)
        self.count = 0
        self.user = run_quiet(["id", "-un"]).strip()

    def submit(self, n: int) -> None:
        for _ in range(n):
            self.api.submit(self.data, mode="full", output="output/bench")
        self.count += n

    def raw_query(self) -> None:
        if self.backend == "drmaa":
            run_quiet(["qstat", "-u", self.user])
        elif self.backend == "slurm":
            run_quiet(["squeue", "-u", self.user])
        else:
            from hebi_api.jobs.backend import JobRef
            from hebi_api.jobs.local import LocalBackend
            from hebi_common.config import LocalJobsConfig
            spool = self.base / "state" / "local-jobs"
            backend = LocalBackend(spool, LocalJobsConfig(workers=2))
            refs = [JobRef(folder.name, "", 0.0) for folder in spool.iterdir() if folder.is_dir()]
            backend.statuses(refs)

    def api_list(self, refresh: bool = False) -> None:
        # The whole body arrives inside the measure; checking it (parsing the JSON) comes after.
        self.last = self.api.get("/api/jobs", params={"limit": 10000, **({"refresh": 1} if refresh else {})})

    def check(self) -> None:
        assert self.last.status_code == 200 and self.last.json()["total"] == self.count, self.last.text[:300]

    def listing(self, size: int) -> dict:
        self.submit(size - self.count)
        self.api_list(refresh=True)  # the new jobs' first poll is not part of any measure
        self.check()
        time.sleep(1.0)
        fresh = median_time(lambda: self.api_list(refresh=True), self.runs)
        self.check()
        cached = median_time(self.api_list, self.runs)
        self.check()
        raw = median_time(self.raw_query, self.runs)
        return {"size": size, "raw": raw, "fresh": fresh, "cached": cached}

    def submissions(self, n: int) -> dict:
        """API, raw DRMAA and raw native submissions interleaved in blocks of 10, so that all three meet
        the scheduler in the same state (its queue grows as they go)."""
        drmaa_raw = RawDrmaa(self.base) if scheduler_running("drmaa") else None
        native = {"slurm": RawSbatch, "local": RawLocal}.get(self.backend)
        native_raw = native(self.base) if native else None
        totals = {"api": 0.0, "raw_drmaa": 0.0, "raw_native": 0.0}
        try:
            for block in range(0, n, 10):
                size = min(10, n - block)
                totals["api"] += timed(lambda: self.submit(size))
                if drmaa_raw:
                    totals["raw_drmaa"] += drmaa_raw.submit(size)
                if native_raw:
                    totals["raw_native"] += native_raw.submit(size)
        finally:
            for raw in (drmaa_raw, native_raw):
                if raw:
                    raw.close()
        return {"n": n, "api": totals["api"], "raw_drmaa": totals["raw_drmaa"] or None,
                "raw_native": totals["raw_native"] or None}

    def close(self) -> None:
        try:
            if self.backend == "drmaa":
                subprocess.run(["qdel", "-u", self.user], capture_output=True, timeout=120)
            elif self.backend == "slurm":
                subprocess.run(["scancel", "-u", self.user], capture_output=True, timeout=120)
            else:
                for job in self.api.get("/api/jobs", params={"state": "queued,running", "limit": 10000}).json()["jobs"]:
                    self.api.post(f"/api/jobs/{job['id']}/cancel")
        finally:
            self.api.stop()
            shutil.rmtree(self.base, ignore_errors=True)


class RawDrmaa:
    """runJob on full.q with the same kind of command, from one session opened beforehand."""

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


class RawSbatch:
    def __init__(self, base: Path):
        self.base = base
        self.script = base / "raw.sh"
        self.script.write_text("#!/bin/sh\nexec sleep 3600\n")
        self.ids: list[str] = []

    def submit(self, n: int) -> float:
        start = time.perf_counter()
        self.ids += [run_quiet(["sbatch", "--parsable", "-J", "bench-raw", "-p", "full", "-t", "60", "-D",
                                str(self.base), "-o", f"{self.base}/raw.out", str(self.script)]).strip()
                     for _ in range(n)]
        return time.perf_counter() - start

    def close(self) -> None:
        subprocess.run(["scancel", *self.ids], capture_output=True, timeout=120)


class RawLocal:
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


def wait_until_empty(backend: str, user: str, limit: float = 120) -> None:
    """Until the scheduler has let go of the benchmark's jobs (deleted jobs linger a moment)."""
    argv = {"drmaa": ["qstat", "-u", user], "slurm": ["squeue", "-h", "-u", user]}.get(backend)
    deadline = time.monotonic() + limit
    while argv and time.monotonic() < deadline:
        if not subprocess.run(argv, capture_output=True, text=True).stdout.strip():
            return
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="local,drmaa,slurm")
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    rows = []
    for backend in args.backends.split(","):
        if not scheduler_running(backend):
            print(f"{backend}: scheduler not running, left out (scripts/*.sh start as root)")
            continue
        bench = Bench(backend, args.runs)
        try:
            listings = [bench.listing(size) for size in sizes]
        finally:
            bench.close()
        wait_until_empty(backend, bench.user)
        # Submissions on a fresh session and an empty queue: a qmaster holding a thousand pending jobs
        # answers runJob several times slower, for the raw calls and the API alike.
        bench = Bench(backend, args.runs)
        try:
            submitted = bench.submissions(args.submissions)
        finally:
            bench.close()
        wait_until_empty(backend, bench.user)
        rows.append((backend, submitted, listings))

    raw_name = {"drmaa": "qstat -u", "slurm": "squeue -u", "local": "statuses()"}
    print("\nListing the status of N jobs (median of %d; ms)" % args.runs)
    print(f"{'backend':8} {'N':>5} {'raw query':>14} {'API':>8} {'ratio':>6} {'API refresh':>12} {'ratio':>6}")
    for backend, _, listings in rows:
        for cell in listings:
            print(f"{backend:8} {cell['size']:5d} {raw_name[backend]:>9} {cell['raw'] * 1000:4.0f} "
                  f"{cell['cached'] * 1000:8.1f} {cell['cached'] / cell['raw']:5.2f}x "
                  f"{cell['fresh'] * 1000:12.1f} {cell['fresh'] / cell['raw']:5.2f}x")
    print(f"\n{args.submissions} submissions (total; ms per job)")
    print(f"{'backend':8} {'API':>12} {'raw DRMAA runJob':>17} {'ratio':>6} {'raw native':>12} {'ratio':>6}")
    for backend, cell, _ in rows:
        n = cell["n"]
        drmaa_time = cell.get("raw_drmaa")
        native = cell.get("raw_native")
        drmaa_text = (f"{drmaa_time * 1000 / n:12.2f}/job {cell['api'] / drmaa_time:5.2f}x" if drmaa_time
                      else f"{'-':>17} {'-':>6}")
        native_text = f"{native * 1000 / n:8.2f}/job {cell['api'] / native:5.2f}x" if native else f"{'-':>12} {'-':>6}"
        print(f"{backend:8} {cell['api'] * 1000 / n:8.2f}/job {drmaa_text} {native_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
