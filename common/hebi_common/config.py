"""hebi's configuration: one YAML file plus environment overrides, validated once at start.

The file is named by ``--config`` or ``HEBI_CONFIG``. Any environment variable ``HEBI_<SECTION>__<KEY>``
(double underscore between levels) overrides one key, e.g. ``HEBI_GATEWAY__PORT=8080``; its value is read
as a YAML scalar, so ``true``, ``8080`` and ``[a, b]`` mean what they say. Every component loads the whole
document, so a misspelt key anywhere is caught at the start of whichever component starts first, with a
message naming the key.
"""
from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_PREFIX = "HEBI_"
ROOT_NAMES = ("data", "processing", "output")


class ConfigError(Exception):
    """A configuration problem, worded for the admin who wrote the file."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    #: ``json``: one JSON object per line (time, level, logger, message, exception), for a log collector.
    format: Literal["text", "json"] = "text"


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


class KubeVolumeConfig(_Section):
    """A volume of a session pod from configuration: exactly one of ``host_path``, ``nfs_server`` with
    ``nfs_path``, or ``claim`` (a PersistentVolumeClaim's name). ``{user}``, ``{uid}`` and ``{gid}`` expand
    in every value, so one entry serves every user."""

    host_path: str = ""
    nfs_server: str = ""
    nfs_path: str = ""
    claim: str = ""
    #: A folder inside the volume (mounted instead of its top).
    sub_path: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> KubeVolumeConfig:
        given = [bool(self.host_path), bool(self.nfs_server or self.nfs_path), bool(self.claim)]
        if sum(given) != 1:
            raise ValueError("give exactly one of host_path, nfs_server + nfs_path, or claim")
        if (self.nfs_server or self.nfs_path) and not (self.nfs_server and self.nfs_path):
            raise ValueError("an NFS volume needs both nfs_server and nfs_path")
        return self


class KubePvcConfig(_Section):
    """A PersistentVolumeClaim per user (kept across sessions), holding the session's state folder."""

    size: str = "1Gi"
    storage_class: str = ""
    access_modes: list[Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"]] = Field(
        default_factory=lambda: ["ReadWriteOnce"])


class KubeProfileConfig(_Section):
    """A kind of session the admin offers (KubeSpawner's profile_list): resources of the part that
    computes (the API, which runs previews), where it may run, and other images."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
    display_name: str = ""
    description: str = ""
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    #: Images replacing ``launcher.kubernetes.images`` entries (web, api, dataserver).
    images: dict[Literal["web", "api", "dataserver"], str] = Field(default_factory=dict)
    #: The one offered first to a user who never chose; else the first of the list.
    default: bool = False


class KubernetesLauncherConfig(_Section):
    """The ``kubernetes`` launcher: each user's session as a Pod (with its Secret, Service and
    NetworkPolicy) through the Kubernetes API (docs/admin.md, Kubernetes launcher)."""

    #: A kubeconfig file; empty: the in-cluster configuration of the gateway's ServiceAccount.
    kubeconfig: str = ""
    context: str = ""
    #: The namespace of the sessions; empty: the kubeconfig's, or the gateway's own in a cluster.
    namespace: str = ""
    #: Which hebi installation a pod belongs to (a label): two in one namespace never see each other's.
    instance: str = Field(default="main", pattern=r"^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$")
    images: PodImagesConfig = Field(default_factory=PodImagesConfig)
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    image_pull_secrets: list[str] = Field(default_factory=list)
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"
    #: How the gateway reaches a session: the pod's IP, or its Service's DNS name.
    connect: Literal["pod_ip", "service"] = "pod_ip"
    #: The labels of the gateway's pods: the only pods a session's NetworkPolicy lets in.
    gateway_labels: dict[str, str] = Field(default_factory=lambda: {"app.kubernetes.io/name": "hebi-gateway"})
    #: Volumes of the roots by root name; a root not named here is a hostPath of its session.roots path.
    roots: dict[str, KubeVolumeConfig] = Field(default_factory=dict)
    #: Where the session's state folder lives: this volume, else the per-user PVC, else an emptyDir.
    state: KubeVolumeConfig | None = None
    pvc: KubePvcConfig | None = None
    #: Further volumes of every session pod, read-only, by the path they appear at: what the job
    #: backends need from the node, e.g. a GridEngine install, Slurm's configuration and munge's socket
    #: (kubernetes/deploy/overlays).
    mounts: dict[str, KubeVolumeConfig] = Field(default_factory=dict)
    profiles: list[KubeProfileConfig] = Field(default_factory=list)
    #: The launcher's own files (each user's last profile choice).
    state_dir: str = "/var/lib/hebi/kube"
    #: Seconds a watch is asked to last (the server then ends it and the launcher watches on).
    watch_timeout: float = Field(default=60, gt=0)
    #: Seconds without any event or bookmark after which the watch counts as stalled and is relisted.
    stall_timeout: float = Field(default=90, gt=0)
    #: Longest wait between reconnections after failures (doubling from 0.5 s).
    backoff_max: float = Field(default=30, gt=0)
    #: Events kept per session pod (older ones dropped), so a flood of events cannot exhaust memory.
    events_per_pod: int = Field(default=50, gt=0)

    @field_validator("mounts")
    @classmethod
    def _absolute_mounts(cls, mounts: dict[str, KubeVolumeConfig]) -> dict[str, KubeVolumeConfig]:
        for path in mounts:
            if not path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"{path!r}: a mount's path must be absolute, without '..'")
        return mounts

    @field_validator("profiles")
    @classmethod
    def _distinct_profiles(cls, profiles: list[KubeProfileConfig]) -> list[KubeProfileConfig]:
        names = [p.name for p in profiles]
        if len(set(names)) != len(names):
            raise ValueError(f"two profiles are named {next(n for n in names if names.count(n) > 1)!r}")
        if sum(p.default for p in profiles) > 1:
            raise ValueError("at most one profile can be the default")
        return profiles


class LauncherConfig(_Section):
    backend: Literal["local", "podman", "kubernetes"] = "local"
    #: Seconds a session may take to answer after it was started, on any backend.
    start_timeout: float = Field(default=30.0, gt=0)
    local: LocalLauncherConfig = Field(default_factory=LocalLauncherConfig)
    podman: PodmanLauncherConfig = Field(default_factory=PodmanLauncherConfig)
    kubernetes: KubernetesLauncherConfig = Field(default_factory=KubernetesLauncherConfig)


class OidcAuthConfig(_Section):
    """Log in through an OpenID Connect provider (authorization code flow with PKCE)."""

    #: The provider's issuer URL; its discovery document is ``<issuer>/.well-known/openid-configuration``.
    issuer: str = ""
    client_id: str = ""
    #: A file holding the client's secret (never the secret itself here: every session is handed this
    #: configuration, so its user could read it). Empty: a public client (PKCE only).
    client_secret_file: str = ""
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email", "groups"])
    #: The callback URL registered with the provider; empty = this gateway's origin + /gateway/oidc/callback.
    redirect_url: str = ""
    #: The claim that names the user (checked as a POSIX user name; never rewritten).
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    #: Ask the userinfo endpoint for claims the id_token lacks.
    userinfo: bool = True
    #: Seconds of clock difference allowed when checking the token's times.
    leeway: int = Field(default=30, ge=0, le=300)
    #: Seconds to wait for the provider (discovery, keys, token, userinfo).
    http_timeout: float = Field(default=10.0, gt=0)


class TrustedHeaderAuthConfig(_Section):
    """Take the user from a header set by an authenticating proxy in front (e.g. Apache mod_auth_openidc)."""

    header: str = "X-Remote-User"
    #: A header with the user's groups, separated by ``groups_separator`` (empty: no groups).
    groups_header: str = ""
    groups_separator: str = ","
    #: Addresses or networks (CIDR) of the proxy; requests from them are believed.
    trusted_proxies: list[str] = Field(default_factory=list)
    #: Or: a header that carries a secret only the proxy knows (the secret in a file). Both empty for
    #: one of them = that way is off; with neither configured no request is believed.
    secret_header: str = "X-Hebi-Proxy-Secret"
    secret_file: str = ""
    #: Where "log out" sends the browser (the proxy's own logout URL); empty = a page saying to close it.
    logout_url: str = ""


class AuthConfig(_Section):
    """How users log in (docs/admin.md, "Login methods")."""

    method: Literal["local", "oidc", "trusted_header"] = "local"
    #: Users allowed in by their groups (from the provider or proxy; any one suffices); empty = everyone
    #: the method authenticates. Local accounts are always allowed.
    allowed_groups: list[str] = Field(default_factory=list)
    #: Admins: these users, and members of these groups.
    admin_users: list[str] = Field(default_factory=list)
    admin_groups: list[str] = Field(default_factory=list)
    #: Where a session's uid, gid and home come from for oidc and trusted_header: ``claims`` (uid_claim
    #: etc., as claims or as the proxy's headers of those names), ``passwd`` (the system's user database:
    #: pwd, so LDAP/sssd too) or ``none`` (the launcher's own user; not for container launchers).
    unix_ids: Literal["claims", "passwd", "none"] = "none"
    uid_claim: str = "posix_uid"
    gid_claim: str = "posix_gid"
    home_claim: str = ""
    oidc: OidcAuthConfig = Field(default_factory=OidcAuthConfig)
    trusted_header: TrustedHeaderAuthConfig = Field(default_factory=TrustedHeaderAuthConfig)


class FrontConfig(_Section):
    """nginx in front of the gateway (docs/admin.md, "The nginx front"): it checks each request's login
    with the gateway once per ``cache_seconds`` and streams the request to the session itself."""

    enabled: bool = False
    #: The nginx binary.
    nginx: str = "nginx"
    #: How long nginx keeps the gateway's answer for one login (and client address and origin): the
    #: longest a logout, a password change or a stopped session takes to reach the front.
    cache_seconds: int = Field(default=1, ge=1, le=60)
    #: nginx worker processes; 0 = one per core.
    workers: int = Field(default=0, ge=0)


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
    #: /gateway/metrics (Prometheus) answers only a scraper that sends ``Authorization: Bearer <token>``
    #: with the token this file holds, or whose own address (never a forwarded one) is in
    #: metrics_addresses (addresses or networks, e.g. ``10.0.0.0/8``). A file, not the token itself: the
    #: configuration is handed to every session, the token must not be.
    metrics_token_file: str = ""
    metrics_addresses: list[str] = Field(default_factory=list)
    #: Culling (docs/admin.md): stop a session with no proxied request for idle_timeout seconds, or
    #: older than max_age seconds; 0 turns either off. Checked every cull_interval seconds. Jobs go on.
    idle_timeout: int = Field(default=0, ge=0)
    max_age: int = Field(default=0, ge=0)
    cull_interval: float = Field(default=60.0, gt=0)
    #: Limits (docs/admin.md): session starts under way at once (beyond it: 429 with Retry-After of
    #: start_retry_after seconds), and sessions in all (a new user's start beyond it is refused); 0 = none.
    concurrent_start_limit: int = Field(default=0, ge=0)
    max_sessions: int = Field(default=0, ge=0)
    start_retry_after: int = Field(default=5, ge=1)
    #: How users log in: local accounts, OIDC, or a trusted proxy's header.
    auth: AuthConfig = Field(default_factory=AuthConfig)
    #: nginx serving the proxied requests, the gateway behind it (off: the gateway proxies them itself).
    front: FrontConfig = Field(default_factory=FrontConfig)

    @field_validator("metrics_addresses")
    @classmethod
    def _networks(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ValueError(f"{address!r} is not an address or network") from None
        return addresses


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
    #: ``gridengine``: GridEngine through its commands (qsub, qstat, qacct); ``slurm``: Slurm through its
    #: commands; ``slurmrest``: Slurm through slurmrestd; ``kubernetes``: a batch/v1 Job per job.
    #: ``gridengine`` and ``slurm`` run their commands on a submit host over SSH when ``jobs.ssh.host``
    #: is set (docs/jobs.md has the table of backends).
    backend: Literal["local", "drmaa", "gridengine", "slurm", "slurmrest", "kubernetes"] = "local"
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


class CodeJobsConfig(_Section):
    """The user's own code as jobs (kind ``code``, docs/jobs.md): Python projects, Octave scripts and
    notebooks, run with the mode's backend, queue and limits like a Savu job."""

    #: Code jobs at all.
    enabled: bool = True
    #: Run code jobs even where the session is not isolated as the user (the ``local`` launcher runs
    #: every session as the service account): only for a single-user machine such as ``make demo``.
    allow_unisolated: bool = False
    #: Where ``requirements.txt`` is installed from. ``index_url`` empty: no index at all, only
    #: ``find_links`` (a facility's wheelhouse folder or page): clusters without internet are the rule.
    index_url: str = "https://pypi.org/simple"
    find_links: list[str] = Field(default_factory=list)
    #: The Python that runs ``hebi_runner.code`` where the job runs; empty: the session's own (a cluster
    #: node sees the same path). A Kubernetes Job runs the jobs image's: ``/opt/hebi/bin/python3``.
    python: str = ""
    #: GNU Octave's command-line program where the job runs, for ``.m`` entry points: a name looked up
    #: on that node's PATH, or a path.
    octave: str = Field(default="octave-cli", min_length=1)
    #: What a project (a folder, or a .zip unpacked at submission) may hold.
    max_files: int = Field(default=10_000, ge=1)
    max_mb: int = Field(default=1024, ge=1)


class _GridEngineCell(_Section):
    """What both ways to GridEngine (``drmaa`` and ``gridengine``) need to know of the cell."""

    #: SGE_ROOT/SGE_CELL given to the library and to every command (a command run over SSH gets no
    #: login profile, so the submit host's must be named here); empty = the environment's.
    sge_root: str = ""
    sge_cell: str = ""
    #: Parallel environment for jobs with more than one core, and the resource that limits memory.
    parallel_environment: str = "smp"
    memory_resource: str = "h_vmem"


class DrmaaJobsConfig(_GridEngineCell):
    #: libdrmaa to load (sets DRMAA_LIBRARY_PATH); empty = the environment's.
    library_path: str = ""
    #: Extra native specification appended to every job (e.g. a project: ``-P tomography``).
    native_specification: str = ""


class SlurmJobsConfig(_Section):
    #: Folder of sbatch/squeue/sacct/scancel/sinfo; empty = PATH.
    bin_dir: str = ""
    #: Extra sbatch arguments for every job (e.g. ``["--account=tomo"]``).
    sbatch_args: list[str] = Field(default_factory=list)


class GridEngineJobsConfig(_GridEngineCell):
    """GridEngine through its client commands (``backend: gridengine``), on this host or over SSH."""

    #: Folder of qsub/qstat/qacct/qdel (on the submit host when ``jobs.ssh`` is set); empty = PATH.
    bin_dir: str = ""
    #: Extra qsub arguments for every job (e.g. ``["-P", "tomography"]``).
    qsub_args: list[str] = Field(default_factory=list)


class SshJobsConfig(_Section):
    """A submit host the command-line backends (gridengine, slurm) reach over SSH; empty host: run here."""

    #: The submit host; empty = the scheduler's commands run on this host.
    host: str = ""
    port: int = Field(default=22, ge=1, le=65535)
    #: Who logs in (and so whose jobs they are); empty = the session's user.
    user: str = ""
    #: The user's private key (per-user keys, e.g. a secret mounted in the session); empty = the
    #: client's defaults (``~/.ssh/id_*``), or host-based authentication.
    identity_file: str = ""
    #: Host-based authentication (the submit host trusts this host's key for its users; needs
    #: ssh-keysign on this host).
    host_based: bool = False
    #: known_hosts file holding the submit host's key; empty = ``~/.ssh/known_hosts``.
    known_hosts_file: str = ""
    #: ``yes`` (production: the host's key must be in known_hosts), ``accept-new`` or ``no``.
    strict_host_key_checking: Literal["yes", "accept-new", "no"] = "yes"
    #: Seconds to wait for the connection, and for each command to finish.
    connect_timeout: int = Field(default=10, ge=1)
    command_timeout: float = Field(default=60.0, gt=0)
    #: Seconds the shared connection (ControlMaster) stays open after the last command.
    control_persist: int = Field(default=600, ge=1)


class SlurmRestJobsConfig(_Section):
    """Slurm through slurmrestd (``backend: slurmrest``)."""

    #: slurmrestd's address as the session reaches it, e.g. ``http://slurmrestd.facility:6820``.
    url: str = ""
    #: The OpenAPI plugin version in the paths (``/slurm/<version>/...``, ``/slurmdb/<version>/...``).
    api_version: str = "v0.0.38"
    #: File holding the JWT (``scontrol token`` output, with or without ``SLURM_JWT=``); read again
    #: whenever it changes, so a renewed token is used at once. ``~`` is the session user's home.
    #: Empty: the ``SLURM_JWT`` environment variable of the API.
    token_file: str = ""
    #: ``X-SLURM-USER-NAME``: whom the jobs run as. Empty: the session's Unix user (with a per-user
    #: token, its owner; with a service token of SlurmUser or root, slurmrestd maps it to this user).
    user_name: str = ""
    #: Seconds to connect to slurmrestd, and to wait for its answer.
    connect_timeout: float = Field(default=5.0, gt=0)
    timeout: float = Field(default=60.0, gt=0)
    #: Extra job properties of every submission, as the API names them (e.g. ``{account: tomo}``).
    job_properties: dict[str, Any] = Field(default_factory=dict)


class KubernetesJobsConfig(_Section):
    """A batch/v1 Job per hebi job (``backend: kubernetes``), for a facility without a batch scheduler
    (docs/jobs.md, Kubernetes Jobs). The mode's ``queue`` names the queue its jobs are shown in."""

    #: A kubeconfig file; empty: the in-cluster configuration of the session pod's ServiceAccount.
    kubeconfig: str = ""
    context: str = ""
    #: Where the Jobs are made; empty: the kubeconfig context's, or the session pod's own namespace.
    namespace: str = ""
    #: The runner image (hebi-api's has python3, hebi-runner and Savu's libraries) and its pull policy.
    image: str = "hebi-api:latest"
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    image_pull_secrets: list[str] = Field(default_factory=list)
    #: ServiceAccount of the job pods (their token is never mounted); empty: the namespace's default.
    service_account: str = ""
    #: The image's Python, which runs the small wrapper that sends the job's output to its files.
    python: str = "python3"
    #: Jobs of one user running at once; more are made suspended and resumed as others end. 0: no limit
    #: (e.g. when Kueue admits the Jobs instead).
    max_parallel: int = Field(default=4, ge=0)
    #: The uid and gid the jobs run as; empty: the session's own (the API runs as the user's uid in its
    #: pod). The jobs never run as root.
    run_as_user: int | None = Field(default=None, ge=1)
    run_as_group: int | None = Field(default=None, ge=0)
    #: Volumes of the roots by root name (as ``launcher.kubernetes.roots``: host_path, claim or NFS, with
    #: ``{user}``, ``{uid}``, ``{gid}``); a root not named here is a hostPath of its path. Each root is
    #: mounted at its own path, so the job's paths mean the same as in the session.
    roots: dict[str, KubeVolumeConfig] = Field(default_factory=dict)
    #: Further read-only volumes of every job pod, by the path they appear at (as ``launcher.kubernetes.mounts``).
    mounts: dict[str, KubeVolumeConfig] = Field(default_factory=dict)
    #: Per queue name, the nodeSelector of its jobs (e.g. GPU nodes); a queue not named runs on any node.
    node_selectors: dict[str, dict[str, str]] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    #: Seconds between SIGTERM and SIGKILL when a job is cancelled or reaches its time limit.
    kill_grace: int = Field(default=30, ge=0)
    #: Seconds a finished Job is kept (ttlSecondsAfterFinished) for its end to be read after a restart.
    keep_finished: int = Field(default=7 * 24 * 3600, ge=0)
    #: Seconds each API call may take before the cluster counts as unavailable.
    request_timeout: float = Field(default=15, gt=0)

    @field_validator("mounts")
    @classmethod
    def _absolute_mounts(cls, mounts: dict[str, KubeVolumeConfig]) -> dict[str, KubeVolumeConfig]:
        for path in mounts:
            if not path.startswith("/") or ".." in path.split("/"):
                raise ValueError(f"{path!r}: a mount's path must be absolute, without '..'")
        return mounts


class JobsConfig(_Section):
    """Jobs: Savu runs (preview and full) and the user's own code, through a cluster backend (docs/jobs.md)."""

    preview: JobModeConfig = Field(default_factory=lambda: JobModeConfig(
        queue="preview.q", time_limit=600, max_time_limit=1800, max_cores=1))
    full: JobModeConfig = Field(default_factory=lambda: JobModeConfig(queue="full.q"))
    #: The job's command as an argument list; ``{data}``, ``{process_list}``, ``{output}`` (the output
    #: folder) and ``{folder}`` (the run's sub-folder name) are replaced. Empty: ``savu DATA LIST OUT -f
    #: FOLDER`` when ``savu`` is on PATH, else ``hebi-runner DATA LIST OUT``.
    command: list[str] = Field(default_factory=list)
    #: Environment of every job (PATH and LANG are passed on from the session).
    env: dict[str, str] = Field(default_factory=dict)
    #: Most jobs one POST /api/jobs/batch may submit (each is checked before any is submitted).
    max_batch: int = Field(default=1000, ge=1, le=100_000)
    #: Slices a preview keeps around the middle when the user chooses none.
    preview_slices: int = Field(default=5, ge=1, le=1000)
    #: Seconds a job list may be old before the next request asks the scheduler again.
    poll_interval: float = Field(default=2.0, gt=0)
    #: Seconds a job may be missing from both the scheduler and its accounting before it is "lost".
    lost_after: float = Field(default=300.0, gt=0)
    local: LocalJobsConfig = Field(default_factory=LocalJobsConfig)
    drmaa: DrmaaJobsConfig = Field(default_factory=DrmaaJobsConfig)
    slurm: SlurmJobsConfig = Field(default_factory=SlurmJobsConfig)
    gridengine: GridEngineJobsConfig = Field(default_factory=GridEngineJobsConfig)
    ssh: SshJobsConfig = Field(default_factory=SshJobsConfig)
    slurmrest: SlurmRestJobsConfig = Field(default_factory=SlurmRestJobsConfig)
    kubernetes: KubernetesJobsConfig = Field(default_factory=KubernetesJobsConfig)
    code: CodeJobsConfig = Field(default_factory=CodeJobsConfig)


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
