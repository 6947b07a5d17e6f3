"""Runs a user's own Python project in its run folder (the API's ``code`` job kind, api/hebi_api/jobs/code.py).

    python -m hebi_runner.code RUN_FOLDER ENTRY --envs FOLDER [--index-url URL] [--find-links WHERE]...

The run folder holds the project, an empty ``output/`` and, when data was chosen, ``input/<its name>``.
With a ``requirements.txt``, the packages are installed with uv into a virtual environment kept in
``--envs`` under a hash of the requirements, the index settings and this Python: the next job with
the same requirements finds it made and starts at once. The environment also sees the session's own
packages (numpy, h5py, scipy...) after its own, so a project needs to list only what it adds.

Then this process becomes the user's program (exec), so a cancel or a time limit reaches it directly
and its exit code is the job's. What it prints goes to the job's logs; hebi's own lines start "hebi:".
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import shutil
import site
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

#: Environments are built here first and renamed when complete, so a job never sees half of one.
BUILDING = ".building-"
#: uv's words for a requirement no index or wheelhouse has (0.4 to 0.13).
MISSING_PACKAGE = re.compile(r"Because (?P<name>[A-Za-z0-9_.\-]+)\S* was not found in the (?:package registry|provided "
                             r"package locations)")
UNSOLVABLE = "No solution found when resolving dependencies"


def say(text: str) -> None:
    print(f"hebi: {text}", file=sys.stderr, flush=True)


class EnvironmentFailed(Exception):
    pass


def environment_key(requirements: str, index_url: str, find_links: list[str]) -> str:
    lines = sorted(line.strip() for line in requirements.splitlines() if line.strip() and not line.startswith("#"))
    text = "\n".join([sys.version, index_url, *find_links, "--", *lines])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def uv_binary() -> str:
    try:
        from uv import find_uv_bin
        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise EnvironmentFailed("uv is not installed with this session, so requirements.txt cannot be "
                                    "installed: ask your administrator") from None
        return found


def make_environment(requirements: Path, envs: Path, index_url: str, find_links: list[str]) -> Path:
    """The environment for ``requirements``: found in ``envs``, or made there."""
    key = environment_key(requirements.read_text(errors="replace"), index_url, find_links)
    env = envs / key
    if (env / "bin" / "python").exists():
        say(f"environment {key}: already made, reused")
        return env
    envs.mkdir(parents=True, exist_ok=True)
    building = envs / f"{BUILDING}{key}-{secrets.token_hex(3)}"
    started = time.monotonic()
    uv = uv_binary()
    quiet = {"UV_NO_PROGRESS": "1", "UV_CACHE_DIR": str(envs / ".uv-cache"), "NO_COLOR": "1"}
    where = " and ".join(filter(None, [index_url, *find_links])) or "no package index"
    try:
        run([uv, "venv", "--quiet", "--python", sys.executable, str(building)], quiet, where)
        index = ["--index-url", index_url] if index_url else ["--no-index"]
        links = [part for link in find_links for part in ("--find-links", link)]
        run([uv, "pip", "install", "--python", str(building / "bin" / "python"), *index, *links,
             "-r", str(requirements)], quiet, where)
        _see_session_packages(building)
        try:
            os.rename(building, env)
        except OSError:  # another job made the same environment meanwhile: theirs is as good
            shutil.rmtree(building, ignore_errors=True)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    say(f"environment {key}: made in {time.monotonic() - started:.1f} s")
    return env


def _see_session_packages(env: Path) -> None:
    """A .pth file puts the session's packages after the environment's own on sys.path."""
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))
    ours = [path for path in site.getsitepackages() if Path(path).is_dir()]
    (purelib / "zz-hebi-session.pth").write_text("".join(f"{path}\n" for path in ours))


def run(argv: list[str], env: dict[str, str], where: str) -> None:
    """Run uv; a failure as a sentence naming what is missing and where it was looked for."""
    answer = subprocess.run(argv, env=dict(os.environ, **env), capture_output=True, text=True, check=False)
    if answer.returncode != 0:
        text = (answer.stderr or answer.stdout).strip()
        sys.stderr.write(text + "\n")
        match = MISSING_PACKAGE.search(text)
        if match:
            raise EnvironmentFailed(f"the package {match.group('name')!r} cannot be found in {where}: check "
                                    "its name, or ask your facility to add it")
        if UNSOLVABLE in text:
            raise EnvironmentFailed(f"the requirements cannot all be installed from {where} (see above)")
        raise EnvironmentFailed(f"installing requirements.txt failed (exit {answer.returncode}, see above)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hebi_runner.code", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_folder", type=Path)
    parser.add_argument("entry")
    parser.add_argument("--envs", type=Path, required=True, help="where environments are kept")
    parser.add_argument("--index-url", default="", help="package index; none: only --find-links")
    parser.add_argument("--find-links", action="append", default=[], help="a wheelhouse folder or page")
    args = parser.parse_args(argv)

    run_folder = args.run_folder
    os.chdir(run_folder)
    python = sys.executable
    requirements = run_folder / "requirements.txt"
    if requirements.is_file():
        try:
            python = str(make_environment(requirements, args.envs, args.index_url, args.find_links) / "bin" / "python")
        except EnvironmentFailed as failed:
            say(str(failed))
            return 2
    env = dict(os.environ, PYTHONUNBUFFERED="1", HEBI_INPUT=str(run_folder / "input"),
               HEBI_OUTPUT=str(run_folder / "output"))
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(name, None)
    say(f"running {args.entry}")
    os.execve(python, [python, args.entry], env)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main())
