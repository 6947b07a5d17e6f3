"""Where the command-line backends (gridengine, slurm) run a scheduler's client commands: here, or on
a submit host over SSH (``jobs.ssh.host``), the way Open OnDemand reaches clusters whose submit hosts
the session's node is not.

A runner takes an argument list and returns the command's exit code and output; it never lets a shell
see user text. Over SSH the remote side does run a shell, so every word of the command line, and every
``K=V`` given to ``env``, is quoted on its own with ``shlex.quote``. A command that cannot be run at all
(missing client, a host that is down, refuses us or does not answer in time) is ClusterUnavailable:
the API answers 503 and the job list keeps its last states.

The SSH runner is the OpenSSH client with a ControlMaster: the first command opens one connection,
later ones are sessions multiplexed over it (no new TCP connection, key exchange or login), and it
stays up ``control_persist`` seconds after the last. The client brings per-user keys, host-based
authentication and known_hosts checking as the site configures them (docs/jobs.md).
"""
from __future__ import annotations

import getpass
import hashlib
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Protocol

from .backend import ClusterUnavailable

#: Longest path a Unix socket may have, less the 17 characters ssh appends while it creates one.
_MAX_SOCKET_PATH = 107 - 17


class CommandRunner(Protocol):
    #: The Unix user the commands run as (whose jobs ``squeue -u`` / ``qstat -u`` list).
    user: str

    def run(self, argv: list[str], env: dict[str, str] | None = None,
            timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run ``argv``; its exit code and output (text) are the caller's to judge. ClusterUnavailable
        when it cannot be run or does not end in time. ``env``: the variables the command must have
        (a job's environment, which ``sbatch --export=ALL`` and ``qsub -V`` hand on to the job); None
        for a command that needs nothing of its own."""

    def close(self) -> None:
        """Release what the runner holds open (the SSH connection)."""


class LocalRunner:
    """The commands run on this host, as this process's user.

    A command given ``env`` gets that and, of this process's environment, only the variables named
    by ``keep`` (the scheduler's own settings, e.g. SLURM_CONF): what a submission hands on to the job
    must not include the session's secrets. A command given no ``env`` inherits this process's.
    """

    def __init__(self, clients: str, keep: tuple[str, ...] = (), timeout: float = 60):
        self.clients = clients
        self.keep = keep
        self.timeout = timeout
        self.user = getpass.getuser()

    def run(self, argv, env=None, timeout=None):
        timeout = timeout or self.timeout
        name = os.path.basename(argv[0])
        environment = None
        if env is not None:
            environment = {key: value for key, value in os.environ.items() if key.startswith(self.keep)}
            environment.update(env)
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=environment,
                                  stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise ClusterUnavailable(f"{name} is not installed ({self.clients})") from None
        except subprocess.TimeoutExpired:
            raise ClusterUnavailable(f"{name} did not answer within {timeout:.0f} s") from None

    def close(self) -> None:
        pass


#: ssh exits with 255 when it (not the remote command) failed; its message then says why.
SSH_FAILED = 255


def remote_command_line(argv: list[str], env: dict[str, str] | None = None) -> str:
    """The line a remote shell runs: ``env K=V ... argv``, each word quoted on its own."""
    words = ["env", *(f"{key}={value}" for key, value in env.items()), *argv] if env else list(argv)
    return " ".join(shlex.quote(str(word)) for word in words)


def control_path(state_dir: Path, host: str, port: int, user: str) -> Path:
    """The ControlMaster's socket: in the session's state dir, or (when that path is too long for a
    Unix socket) in a private folder of the temporary directory."""
    token = hashlib.sha256(f"{user}@{host}:{port}".encode()).hexdigest()[:12]
    path = state_dir / f"ssh-{token}"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    folder = Path(tempfile.gettempdir()) / f"hebi-ssh-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.stat().st_uid != os.getuid() or folder.stat().st_mode & 0o077:
        raise ClusterUnavailable(f"{folder} is not this user's private folder: cannot keep the SSH connection there")
    return folder / f"{hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]}-{token}"


class SshRunner:
    """The commands run on ``config.host`` through the OpenSSH client, over one shared connection.

    A command runs in the login environment of the submit host (never this process's), with ``env``
    added by ``env K=V``.
    """

    def __init__(self, config, state_dir: Path, clients: str, ssh: str = "ssh"):
        self.config = config
        self.clients = clients
        self.user = config.user or os.environ.get("HEBI_SESSION_USER") or getpass.getuser()
        self.socket = control_path(state_dir, config.host, config.port, self.user)
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.where = f"{self.user}@{config.host}:{config.port}"
        self._base = [ssh, "-F", "none", "-T", "-p", str(config.port), "-l", self.user,
                      "-o", "BatchMode=yes", "-o", f"ConnectTimeout={config.connect_timeout}",
                      "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=2",
                      "-o", "ControlMaster=auto", "-o", f"ControlPath={self.socket}",
                      "-o", f"ControlPersist={config.control_persist}",
                      "-o", f"StrictHostKeyChecking={config.strict_host_key_checking}"]
        if config.known_hosts_file:
            self._base += ["-o", f"UserKnownHostsFile={config.known_hosts_file}"]
        if config.identity_file:
            self._base += ["-i", config.identity_file, "-o", "IdentitiesOnly=yes"]
        if config.host_based:
            self._base += ["-o", "HostbasedAuthentication=yes", "-o", "EnableSSHKeysign=yes"]

    def ssh_argv(self, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
        # "--" ends ssh's options: a host name can never be read as one.
        return [*self._base, "--", self.config.host, remote_command_line(argv, env)]

    def run(self, argv, env=None, timeout=None):
        timeout = timeout or self.config.command_timeout
        name = os.path.basename(argv[0])
        try:
            done = subprocess.run(self.ssh_argv(argv, env), capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise ClusterUnavailable("the ssh client is not installed (openssh-client), needed to reach "
                                     f"the submit host {self.config.host}") from None
        except subprocess.TimeoutExpired:
            raise ClusterUnavailable(f"{name} on {self.where} did not answer within {timeout:.0f} s") from None
        if done.returncode == SSH_FAILED:
            raise ClusterUnavailable(f"cannot reach the submit host {self.where}: {_ssh_reason(done.stderr)}")
        if done.returncode == 127 and "not found" in done.stderr:
            raise ClusterUnavailable(f"{name} is not installed on the submit host {self.config.host} ({self.clients})")
        return done

    def close(self) -> None:
        if self.socket.exists():
            subprocess.run([*self._base, "-O", "exit", "--", self.config.host], capture_output=True,
                           timeout=10, stdin=subprocess.DEVNULL, check=False)


def _ssh_reason(stderr: str) -> str:
    """ssh's own message without its warnings (e.g. a host added to known_hosts)."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip() and not line.startswith("Warning:")]
    return " ".join(lines)[-300:] if lines else "ssh failed without saying why (exit code 255)"


def make_runner(jobs, state_dir: Path, clients: str, keep: tuple[str, ...] = ()) -> CommandRunner:
    """The runner ``jobs.ssh`` asks for: over SSH when it names a host, else on this host (``keep``:
    see LocalRunner)."""
    if jobs.ssh.host:
        return SshRunner(jobs.ssh, state_dir, clients)
    return LocalRunner(clients, keep)
