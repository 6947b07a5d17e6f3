"""Runs a user's own Python project, Octave script or notebook in its run folder (the API's ``code``
job kind, api/hebi_api/jobs/code.py).

    python -m hebi_runner.code RUN_FOLDER ENTRY --envs FOLDER [--index-url URL] [--find-links WHERE]...
                               [--parameters FILE] [--octave PROGRAM]

The run folder holds the project, an empty ``output/`` and, when data was chosen, ``input/<its name>``.
With a ``requirements.txt``, the packages are installed with uv into a virtual environment kept in
``--envs`` under a hash of the requirements, the index settings and this Python: the next job with
the same requirements finds it made and starts at once. The environment also sees the session's own
packages (numpy, h5py, scipy...) after its own, so a project needs to list only what it adds.

Then this process becomes the user's program (exec), so a cancel or a time limit reaches it directly
and its exit code is the job's. An ``.m`` entry becomes GNU Octave running that script instead (a
``requirements.txt`` names Python packages, so it is not used). A notebook (``.ipynb``) is executed
headless with papermill instead, in a kernel of that environment's Python, and kept executed and as
HTML in ``output/``. What the program prints goes to the job's logs; hebi's own lines start "hebi:".
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from hebi_common.atomic import atomic_write
from hebi_common.languages import language_of

from . import landlock

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
    parser.add_argument("--parameters", type=Path, help="a notebook's parameters (a JSON object), papermill-style")
    parser.add_argument("--scratch", type=Path, help="the program's temporary folder (TMPDIR); default: a new one")
    parser.add_argument("--octave", default="octave-cli", help="GNU Octave's command-line program, for .m entries")
    args = parser.parse_args(argv)
    scratch = args.scratch.resolve() if args.scratch else Path(tempfile.mkdtemp(prefix="hebi-code-"))
    scratch.mkdir(parents=True, exist_ok=True)
    os.chmod(scratch, 0o700)  # the program's own: on a shared node, nobody else's business
    tempfile.tempdir = str(scratch)

    run_folder = args.run_folder
    os.chdir(run_folder)
    python = sys.executable
    requirements = run_folder / "requirements.txt"
    language = language_of(args.entry)
    octave = language == "octave"
    if octave and requirements.is_file():
        say("requirements.txt lists Python packages: not used for an Octave script")
    elif requirements.is_file():
        try:
            python = str(make_environment(requirements, args.envs, args.index_url, args.find_links) / "bin" / "python")
        except EnvironmentFailed as failed:
            say(str(failed))
            return 2
    env = dict(os.environ, PYTHONUNBUFFERED="1", HEBI_INPUT=str(run_folder / "input"),
               HEBI_OUTPUT=str(run_folder / "output"), TMPDIR=str(scratch),
               # matplotlib's cache would go to HOME, which the program may not write to.
               MPLCONFIGDIR=str(scratch / "matplotlib"))
    for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(name, None)
    if language == "notebook":
        sockets = _sockets_folder()
        confine_writes(run_folder / "output", scratch, sockets)
        parameters = json.loads(args.parameters.read_text()) if args.parameters else {}
        try:
            return run_notebook(Path(args.entry), python, parameters, env, sockets)
        finally:
            shutil.rmtree(sockets, ignore_errors=True)
    if octave:
        return run_octave(args.octave, args.entry, env, run_folder / "output", scratch)
    confine_writes(run_folder / "output", scratch)
    say(f"running {args.entry}")
    os.execve(python, [python, args.entry], env)
    return 127  # not reached


def run_octave(program: str, entry: str, env: dict[str, str], output: Path, scratch: Path) -> int:
    """Become GNU Octave running the script ``entry`` from the run folder (so ``output/`` is where it
    writes), its own folder on Octave's path for the functions beside it."""
    octave = shutil.which(program)
    if not octave:
        say(f"GNU Octave ({program}) is not installed where this job ran, so .m scripts cannot run here: "
            "ask your administrator")
        return 2
    # Octave keeps its settings and packages under HOME and XDG folders the job may not write to: the
    # scratch folder instead. --no-init-file: the user's ~/.octaverc is not part of the project.
    env = dict(env, HOME=str(scratch), XDG_CONFIG_HOME=str(scratch / "config"), XDG_DATA_HOME=str(scratch / "data"),
               XDG_CACHE_HOME=str(scratch / "cache"))
    argv = [octave, "--no-init-file", "--no-history", "--no-window-system", "--quiet"]
    folder = os.path.dirname(entry)
    if folder:
        argv += ["--path", folder]
    confine_writes(output, scratch)
    say(f"running {entry} with {os.path.basename(octave)}")
    os.execve(octave, [*argv, entry], env)
    return 127  # not reached


def confine_writes(output: Path, scratch: Path, *more: Path) -> None:
    """From here on, this process and the program it becomes write only beneath ``output`` and the
    scratch folder (and devices: /dev/null, /dev/shm), enforced by the kernel where it can."""
    try:
        version = landlock.allow_writes_only_beneath([str(output), str(scratch), "/dev", *map(str, more)])
    except landlock.Unavailable as why:
        say(f"writes outside output/ are not prevented on this machine ({why})")
        return
    say(f"your program may write only in output/ and its scratch folder $TMPDIR (the kernel enforces it: "
        f"Landlock ABI {version})")


def _sockets_folder() -> Path:
    """A private folder for a kernel's Unix sockets, whose paths must be short (108 bytes at most). In
    /dev/shm where there is one: the confined job may still remove it at the end (/dev is among the
    places it may write), whereas a folder in /tmp would be left behind by every notebook job."""
    for base in ("/dev/shm", "/tmp"):
        if os.access(base, os.W_OK):
            return Path(tempfile.mkdtemp(prefix="hebi-kernel-", dir=base))
    return Path(tempfile.mkdtemp(prefix="hebi-kernel-"))


def _ipc_kernel_manager(sockets: Path):
    """A kernel manager talking to its kernel over Unix sockets in a private folder (0700): over TCP,
    anyone else on a shared node could connect to the kernel's ports and read what it outputs."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum, Unicode

    class IpcKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
        ip = Unicode(str(sockets / "kernel"), config=True)  # for ipc: the sockets' path, plus -1, -2...

    return IpcKernelManager


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def run_notebook(entry: Path, python: str, parameters: dict, env: dict[str, str], sockets: Path) -> int:
    """Execute the notebook headless with papermill (its parameters injected after the cell tagged
    "parameters"), in a kernel of ``python``; keep it executed in output/, and as HTML beside it. A cell
    that raises fails the job with that error; the executed notebook shows where."""
    try:
        import papermill
        from nbconvert import HTMLExporter
    except ImportError:
        say("notebooks cannot run here: papermill and nbconvert are not installed with this session")
        return 2
    # Jupyter keeps kernel specs, connection files and IPython's profile under HOME, which may be
    # read-only (a pod) or shared: a folder of this job's own instead.
    scratch = Path(tempfile.mkdtemp(prefix="hebi-notebook-"))
    # A cancel or the time limit (SIGTERM) unwinds through papermill, which then shuts its kernel down
    # (the kernel is in a session of its own, out of reach of the job's process group).
    signal.signal(signal.SIGTERM, _terminated)
    try:
        spec = scratch / "kernels" / "hebi"
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python (hebi job)", "language": "python", "env": {"PYTHONUNBUFFERED": "1"}}))
        os.environ.clear()
        os.environ.update(env)  # the kernel's: TMPDIR, HEBI_INPUT/OUTPUT, MPLCONFIGDIR, as a program's
        os.environ.update(JUPYTER_PATH=str(scratch), JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
                          JUPYTER_CONFIG_DIR=str(scratch / "config"), IPYTHONDIR=str(scratch / "ipython"),
                          JUPYTER_PLATFORM_DIRS="1")
        executed = Path("output") / entry.name
        failure = ""
        say(f"running the notebook {entry}" + (f" with {', '.join(sorted(parameters))}" if parameters else ""))
        try:
            papermill.execute_notebook(str(entry), str(executed), parameters=parameters, kernel_name="hebi",
                                       progress_bar=False, stdout_file=sys.stdout, stderr_file=sys.stderr,
                                       cwd=".", kernel_manager_class=_ipc_kernel_manager(sockets))
        except papermill.PapermillExecutionError as error:
            failure = f"{error.ename}: {error.evalue}"
        except Exception as error:  # noqa: BLE001 - a kernel that does not start, a notebook that does not parse
            failure = f"the notebook could not run: {type(error).__name__}: {error}"
        if executed.exists():
            html, _ = HTMLExporter().from_filename(str(executed))
            page = executed.with_suffix(".html")
            with atomic_write(page, text=True) as out:
                out.write(html)
            say(f"kept {executed} and {page}")
        if failure:
            print(failure, file=sys.stderr, flush=True)
            return 1
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
