"""The ``fake_cluster`` fixture (registered by tests/conftest.py): a fresh fake cluster per test."""
from __future__ import annotations

import os
import shutil

import pytest
from conftest import real_component

from .cluster import FakeCluster


@pytest.fixture
def fake_cluster(tmp_path):
    """A fresh fake one-node cluster (API server and kubelet) for one test; its pods are removed after."""
    with FakeCluster(tmp_path / "fakekube") as cluster:
        yield cluster


def require_podman() -> None:
    """The kubelet runs pods with podman, as root (the images' users are numeric uids)."""
    real_component("podman", shutil.which("podman") is not None and os.geteuid() == 0,
                   "install it as root with scripts/install-system.sh podman")


def api_client(cluster: FakeCluster):
    """The official client, configured from the cluster's kubeconfig as a real deployment's would be."""
    from kubernetes import config
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))
