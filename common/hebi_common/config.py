"""hebi's configuration: one YAML file plus environment overrides, validated once at start.

The file is named by ``--config`` or ``HEBI_CONFIG``. Any environment variable ``HEBI_<SECTION>__<KEY>``
(double underscore between levels) overrides one key, e.g. ``HEBI_GATEWAY__PORT=8080``; its value is read
as a YAML scalar, so ``true``, ``8080`` and ``[a, b]`` mean what they say. Every component loads the whole
document, so a misspelt key anywhere is caught at the start of whichever component starts first, with a
message naming the key.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "HEBI_"
ROOT_NAMES = ("data", "processing", "output")


class ConfigError(Exception):
    """A configuration problem, worded for the admin who wrote the file."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class RootConfig(_Section):
    #: Folder of this root; ``{user}`` and ``{home}`` are replaced with the session's user.
    path: str
    writable: bool = False


class SessionConfig(_Section):
    """What a user's session (API + dataserver) serves."""

    roots: dict[str, RootConfig] = Field(default_factory=dict)
    #: Largest request body the API stores (uploads); larger ones get 413.
    max_upload_bytes: int = Field(default=10 * 1024**3, gt=0)
    #: Most bytes the user's writable roots may hold for an upload to be stored (0: no quota); an upload
    #: that would pass it gets 413. Measured by the API (hebi_api.quota); filesystem quotas stay the hard limit.
    quota_bytes: int = Field(default=0, ge=0)
    #: Where the API keeps the user's own state (job registry, local job records). ``{user}`` and
    #: ``{home}`` expand. Empty: ``{home}/.hebi`` for users with a home, else ``<user>/state`` in the
    #: launcher's own folder for the user. It must be the user's alone (hebi_common.session).
    state_dir: str = ""
    #: ``auto``: a real Savu's plugins when ``savu`` imports, else the bundled catalogue.
    plugin_catalogue: Literal["auto", "bundled", "savu"] = "auto"

    @field_validator("roots")
    @classmethod
    def _known_roots(cls, roots: dict[str, RootConfig]) -> dict[str, RootConfig]:
        unknown = sorted(set(roots) - set(ROOT_NAMES))
        if unknown:
            raise ValueError(f"unknown root {unknown[0]!r}; the roots are {', '.join(ROOT_NAMES)}")
        return roots


class LocalLauncherConfig(_Section):
    """The ``local`` launcher: each user's session as processes on this machine."""

    #: Session records, sockets and logs live here, one folder per user.
    state_dir: str = "/var/lib/hebi/sessions"
    #: The built web app (``web/dist``) that the session's nginx serves.
    web_root: str = ""
    #: The session's nginx config template (``web/nginx/session.conf.template``).
    nginx_template: str = ""
    #: ``auto``: nginx when installed, else the built-in router; ``required``: fail without nginx.
    nginx: Literal["auto", "required", "off"] = "auto"
    nginx_binary: str = "nginx"
    #: Python interpreter that runs the session's API and dataserver.
    python: str = ""


class PodImagesConfig(_Section):
    """The images of a session's parts (build_docker_images.sh writes their tags to .cache/images.json)."""

    web: str = "localhost/hebi-web:latest"
    api: str = "localhost/hebi-api:latest"
    dataserver: str = "localhost/hebi-dataserver:latest"


class PodmanLauncherConfig(_Section):
    """The ``podman`` launcher: each user's session as a pod (``podman kube play``) run as the user's uid."""

    #: Pod manifests, session secrets and address allocations live here, one folder per user.
    state_dir: str = "/var/lib/hebi/pods"
    images: PodImagesConfig = Field(default_factory=PodImagesConfig)
    #: The podman binary, and a containers.conf for it (CONTAINERS_CONF; empty: the system's).
    podman: str = "podman"
    containers_conf: str = ""
    #: Each session listens on its own loopback address 127.0.0.N, N in this range (host network).
    loopback_range: tuple[int, int] = (10, 250)
    #: Limits of each container (Kubernetes quantities).
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"


class LauncherConfig(_Section):
    backend: Literal["local", "podman"] = "local"
    #: Seconds a session may take to answer after it was started, on any backend.
    start_timeout: float = Field(default=30.0, gt=0)
    local: LocalLauncherConfig = Field(default_factory=LocalLauncherConfig)
    podman: PodmanLauncherConfig = Field(default_factory=PodmanLauncherConfig)


class GatewayConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    #: Users file (local accounts) and login records live here.
    state_dir: str = "/var/lib/hebi/gateway"
    #: ``auto``: Secure cookies when the request came over HTTPS (directly or per X-Forwarded-Proto).
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    #: How long a login lasts without use.
    login_max_age: int = Field(default=12 * 3600, gt=0)
    #: Trust X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-For from a TLS-terminating proxy in
    #: front of the gateway: for Secure cookies, the origin state changes must come from, and the client
    #: address logins are throttled by.
    trust_forwarded_proto: bool = False
    #: Failed logins allowed before delays begin, per account and per client address.
    login_free_failures: int = Field(default=5, ge=1)
    login_free_failures_per_address: int = Field(default=20, ge=1)
    #: The first delay (seconds), doubled with each further failure up to login_max_delay.
    login_delay: float = Field(default=1.0, gt=0)
    login_max_delay: float = Field(default=900.0, gt=0)
    #: Seconds after its last failure that an account's or address's failures are forgotten.
    login_failure_window: float = Field(default=3600.0, gt=0)
    #: Accounts and addresses remembered (each table), so a flood of made-up names is bounded.
    login_throttle_entries: int = Field(default=10000, ge=1)
    #: Seconds a client may leave a request body idle (sending nothing) before its connection is closed.
    body_idle_timeout: float = Field(default=60.0, gt=0)
    #: uids (and gids) ``hebi-gateway adduser`` assigns to new accounts without --uid: the lowest one no
    #: account has. Sessions in containers run as their account's uid.
    uid_range: tuple[int, int] = (20000, 29999)


class DataserverConfig(_Section):
    """The session's HDF5 slicing server (/data/)."""

    #: Most bytes one request may make the server hold (the selection it reads); more gets 413.
    max_request_bytes: int = Field(default=512 * 1024**2, gt=0)
    #: HDF5 files kept open between requests (least recently used are closed first).
    open_files: int = Field(default=16, ge=1)
    #: HDF5 chunk cache of each open file (compressed chunks decoded once, reused by the next slices).
    chunk_cache_bytes: int = Field(default=64 * 1024**2, ge=0)
    #: Threads reading uncompressed chunks in parallel for one request.
    read_threads: int = Field(default=2, ge=1, le=32)
    #: Largest chunk (uncompressed: chunk shape x item size) of a compressed dataset a request may make
    #: the server decompress; HDF5 decompresses a chunk whole, even for one value. More gets 413.
    max_chunk_bytes: int = Field(default=64 * 1024**2, gt=0)
    #: Children of a group listed by one /data/meta; the answer says ``truncated`` beyond.
    max_children: int = Field(default=10_000, ge=1)
    #: Most bytes one request may make HDF5 decompress (compressed chunks it crosses x their size): a
    #: column of a row-chunked image is small but crosses every chunk. More gets 413.
    max_decompressed_bytes: int = Field(default=4 * 1024**3, gt=0)


class JobModeConfig(_Section):
    """Where the jobs of one mode (preview or full) go, and what a user may ask of it."""

    #: ``local``: worker processes on this machine; ``drmaa``: a DRMAA 1.0 scheduler (GridEngine);
    #: ``slurm``: Slurm through its commands.
    backend: Literal["local", "drmaa", "slurm"] = "local"
    #: GridEngine queue or Slurm partition (unused by ``local``).
    queue: str = ""
    #: Time limit (seconds) when the user names none, and the most they may ask for.
    time_limit: int = Field(default=3600, gt=0)
    max_time_limit: int = Field(default=24 * 3600, gt=0)
    max_cores: int = Field(default=4, ge=1)
    #: Memory a job may use (MB); 0 = ask the scheduler for nothing.
    memory_mb: int = Field(default=0, ge=0)
    max_memory_mb: int = Field(default=64 * 1024, ge=0)
    #: GPUs on this mode's queue. 0: a list with an active GPU-only plugin is refused at submission.
    gpus: int = Field(default=0, ge=0)


class LocalJobsConfig(_Section):
    #: Jobs running at once on this machine; more wait in the queue.
    workers: int = Field(default=2, ge=1)
    #: Seconds between SIGTERM and SIGKILL when a job is cancelled or reaches its time limit.
    kill_grace: float = Field(default=5.0, ge=0)


class DrmaaJobsConfig(_Section):
    #: libdrmaa to load (sets DRMAA_LIBRARY_PATH); empty = the environment's.
    library_path: str = ""
    #: GridEngine's SGE_ROOT/SGE_CELL for qstat and the accounting file; empty = the environment's.
    sge_root: str = ""
    sge_cell: str = ""
    #: Parallel environment for jobs with more than one core, and the resource that limits memory.
    parallel_environment: str = "smp"
    memory_resource: str = "h_vmem"
    #: Extra native specification appended to every job (e.g. a project: ``-P tomography``).
    native_specification: str = ""


class SlurmJobsConfig(_Section):
    #: Folder of sbatch/squeue/sacct/scancel/sinfo; empty = PATH.
    bin_dir: str = ""
    #: Extra sbatch arguments for every job (e.g. ``["--account=tomo"]``).
    sbatch_args: list[str] = Field(default_factory=list)


class JobsConfig(_Section):
    """Savu jobs: preview and full runs through a cluster backend (docs/jobs.md)."""

    preview: JobModeConfig = Field(default_factory=lambda: JobModeConfig(
        queue="preview.q", time_limit=600, max_time_limit=1800, max_cores=1))
    full: JobModeConfig = Field(default_factory=lambda: JobModeConfig(queue="full.q"))
    #: The job's command as an argument list; ``{data}``, ``{process_list}``, ``{output}`` (the output
    #: folder) and ``{folder}`` (the run's sub-folder name) are replaced. Empty: ``savu DATA LIST OUT -f
    #: FOLDER`` when ``savu`` is on PATH, else ``hebi-runner DATA LIST OUT``.
    command: list[str] = Field(default_factory=list)
    #: Environment of every job (PATH and LANG are passed on from the session).
    env: dict[str, str] = Field(default_factory=dict)
    #: Slices a preview keeps around the middle when the user chooses none.
    preview_slices: int = Field(default=5, ge=1, le=1000)
    #: Seconds a job list may be old before the next request asks the scheduler again.
    poll_interval: float = Field(default=2.0, gt=0)
    #: Seconds a job may be missing from both the scheduler and its accounting before it is "lost".
    lost_after: float = Field(default=300.0, gt=0)
    local: LocalJobsConfig = Field(default_factory=LocalJobsConfig)
    drmaa: DrmaaJobsConfig = Field(default_factory=DrmaaJobsConfig)
    slurm: SlurmJobsConfig = Field(default_factory=SlurmJobsConfig)


class HebiConfig(_Section):
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    launcher: LauncherConfig = Field(default_factory=LauncherConfig)
    session: SessionConfig = Field(default_factory=SessionConfig)
    jobs: JobsConfig = Field(default_factory=JobsConfig)
    dataserver: DataserverConfig = Field(default_factory=DataserverConfig)


def load_config(path: str | os.PathLike[str] | None = None,
                environ: Mapping[str, str] | None = None) -> HebiConfig:
    """Read, override and validate the configuration; raise ConfigError naming the bad key."""
    environ = os.environ if environ is None else environ
    path = path if path is not None else environ.get("HEBI_CONFIG")
    document: dict[str, Any] = {}
    source = "the environment"
    if path:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"{path}: cannot read the configuration file: {err.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            raise ConfigError(f"{path}: not valid YAML{where}: {getattr(err, 'problem', err)}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections, not {type(loaded).__name__}")
        document = loaded
    for name, raw in sorted(environ.items()):
        if name.startswith(ENV_PREFIX) and "__" in name:
            keys = name[len(ENV_PREFIX):].lower().split("__")
            if not all(keys):
                raise ConfigError(f"{name}: empty key in environment override")
            _set_path(document, keys, _env_value(raw), name)
    try:
        return HebiConfig.model_validate(document)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown key (misspelt?)"
        got = first.get("input")
        shown = "" if first["type"] in ("extra_forbidden", "missing") or isinstance(got, dict) else f" (got {got!r})"
        more = f"; and {err.error_count() - 1} more problem(s)" if err.error_count() > 1 else ""
        raise ConfigError(f"{source}: {key}: {message}{shown}{more}") from None


def _env_value(raw: str) -> Any:
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def _set_path(document: dict[str, Any], keys: list[str], value: Any, name: str) -> None:
    node = document
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{name}: '{key}' is not a section, cannot override a key inside it")
        node = child
    node[keys[-1]] = value


def require_real() -> bool:
    """True under HEBI_REQUIRE_REAL=1: a real component that cannot start is an error, never a fallback."""
    return os.environ.get("HEBI_REQUIRE_REAL", "") not in ("", "0", "false", "no")
