"""Backends come from a registry, imported only when chosen; launcher-neutral settings live in
``launcher.*``."""
import subprocess
import sys

import pytest

from hebi_common.config import ConfigError, load_config
from pod_launcher import LauncherError, make_launcher


def test_the_interface_imports_no_backend():
    done = subprocess.run([sys.executable, "-c", (
        "import sys, pod_launcher; "
        "print(sorted(m for m in sys.modules if m in ('pod_launcher.local', 'pod_launcher.podman')))")],
        capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_configured_backend_is_made(tmp_path):
    config = load_config(environ={"HEBI_LAUNCHER__BACKEND": "podman",
                                  "HEBI_LAUNCHER__PODMAN__STATE_DIR": str(tmp_path)})
    assert make_launcher(config).name == "podman"
    assert make_launcher(load_config(environ={})).name == "local"


def test_a_podman_session_needs_the_accounts_uid(tmp_path):
    from hebi_common.identity import Identity
    config = load_config(environ={"HEBI_LAUNCHER__BACKEND": "podman",
                                  "HEBI_LAUNCHER__PODMAN__STATE_DIR": str(tmp_path)})
    with pytest.raises(LauncherError, match="alice has no uid"):
        make_launcher(config).start(Identity(user="alice"))


def test_start_timeout_is_the_launchers_not_the_local_backends():
    assert load_config(environ={"HEBI_LAUNCHER__START_TIMEOUT": "12"}).launcher.start_timeout == 12
    with pytest.raises(ConfigError, match="start_timeout"):
        load_config(environ={"HEBI_LAUNCHER__LOCAL__START_TIMEOUT": "12"})
