"""Benchmark: how soon a code job starts when its environment is cached, against a cold one and
against what the NIAS servers do for every job (a fresh venv and pip install), in one run.

    .venv/bin/python bench/code/run.py [--runs 3]

A project whose ``requirements.txt`` asks for a typical analysis stack (scipy, pillow, tifffile,
pywavelets, and numpy through them) and whose ``code.py`` imports them and writes one file. The
packages come from a local wheelhouse (the wheels build_docker_images.sh makes in .cache/wheels), as a
cluster without internet installs them; nothing leaves the machine.

- **hebi, cold**: a code job through the session's API (local backend, gunicorn as the launcher runs
  it) whose environment does not exist yet: no environment, no uv cache. Submit to ``finished``.
- **hebi, cached**: the same job again: the environment made by the first is reused.
- **NIAS-style**: what a job of the NIAS server costs: ``python -m venv`` + ``pip install --no-index
  --find-links`` of the same requirements, then the same ``code.py``, timed directly (no API).

Each figure is the median of ``--runs``; the ratios are what to read (this machine is noisy).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "jobs")]
from code_support import write_project  # noqa: E402
from jobs_support import ApiProcess, write_session  # noqa: E402

REQUIREMENTS = "scipy\npillow\ntifffile\npywavelets\n"
CODE = ("import numpy, scipy.ndimage, PIL.Image, tifffile, pywt\n"
        "image = scipy.ndimage.gaussian_filter(numpy.random.rand(256, 256), 2)\n"
        "tifffile.imwrite('output/smoothed.tif', image.astype('float32'))\n")


def hebi_job(api: ApiProcess) -> float:
    started = time.perf_counter()
    answer = api.post("/api/jobs", json={"kind": "code", "project": "processing/project", "output": "output/bench",
                                         "mode": "full"})
    assert answer.status_code == 201, answer.text
    job = api.wait(answer.json()["id"], {"finished", "failed", "timeout", "lost", "cancelled"}, timeout=600)
    elapsed = time.perf_counter() - started
    stderr = api.get(f"/api/jobs/{job['id']}/log", params={"stream": "stderr"}).json()["text"]
    assert job["state"] == "finished", (job, stderr)
    return elapsed


def nias_style(base: Path, project: Path, wheelhouse: Path) -> float:
    work = base / "nias"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(project, work)
    (work / "output").mkdir()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    subprocess.run([str(work / "venv" / "bin" / "pip"), "install", "-q", "--no-index", "--find-links", str(wheelhouse),
                    "-r", str(work / "requirements.txt")], check=True)
    subprocess.run([str(work / "venv" / "bin" / "python"), "code.py"], cwd=work, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    wheelhouse = REPO / ".cache" / "wheels"
    if not any(wheelhouse.glob("scipy-*.whl")):
        print("no wheelhouse in .cache/wheels: run ./build_docker_images.sh first", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="hebi-bench-code-", dir="/tmp"))
    try:
        config = write_session(base, "local", code={"find_links": [str(wheelhouse)]})
        project = write_project(base / "roots" / "processing" / "project",
                                {"requirements.txt": REQUIREMENTS, "code.py": CODE})
        envs = base / "roots" / "output" / ".hebi" / "envs"
        api = ApiProcess(config).start()
        cold, cached, nias = [], [], []
        try:
            for _ in range(args.runs):
                shutil.rmtree(envs, ignore_errors=True)  # no environment and no uv cache: a first job
                cold.append(hebi_job(api))
                cached.append(hebi_job(api))
                nias.append(nias_style(base, project, wheelhouse))
        finally:
            api.stop()
        rows = [("hebi, cold environment (first job)", cold), ("hebi, cached environment (next job)", cached),
                ("NIAS-style venv + pip install per job", nias)]
        print(f"code job, submit to finished, {args.runs} runs (medians); requirements: "
              f"{', '.join(REQUIREMENTS.split())} from a local wheelhouse")
        for label, values in rows:
            print(f"  {label:<44} {statistics.median(values):7.2f} s")
        print(f"  ratio cached / cold      {statistics.median(cached) / statistics.median(cold):.2f}")
        print(f"  ratio cached / NIAS-style {statistics.median(cached) / statistics.median(nias):.2f}")
        print(f"  ratio cold / NIAS-style   {statistics.median(cold) / statistics.median(nias):.2f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
