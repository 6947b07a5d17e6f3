"""/gateway/health and the metrics of the real gateway (hebi-gateway serve) with the kubernetes launcher
against the fake API server (tests/fakekube): a stalled watch makes the gateway unhealthy, as the
kubelet's liveness probe sees it, and it is healthy again once the watch recovers."""
from __future__ import annotations

import time

import local_system
import pytest
import requests
import yaml
from conftest import until
from fakekube import FakeCluster
from prometheus_client.parser import text_string_to_metric_families

from pod_launcher.objects import labels, pod_name


def health(url: str) -> tuple[int, dict]:
    answer = requests.get(f"{url}/gateway/health", timeout=10)
    return answer.status_code, answer.json()


def launcher_healthy(url: str) -> float:
    text = requests.get(f"{url}/gateway/metrics", timeout=10).text
    return next(s.value for family in text_string_to_metric_families(text) for s in family.samples
                if s.name == "hebi_launcher_healthy" and s.labels == {"backend": "kubernetes"})


def test_health_reports_a_stalled_watch_of_the_kubernetes_launcher_and_its_recovery(tmp_path):
    with FakeCluster(tmp_path / "cluster", kubelet=False, bookmark_interval=0.2) as cluster:
        config_path = tmp_path / "hebi.yaml"
        config_path.write_text(yaml.safe_dump({
            "logging": {"format": "json"},
            "gateway": {"port": 0, "state_dir": str(tmp_path / "gateway"), "metrics_addresses": ["127.0.0.1"]},
            "launcher": {"backend": "kubernetes", "kubernetes": {
                "kubeconfig": str(cluster.kubeconfig), "instance": "ops", "state_dir": str(tmp_path / "kube"),
                "watch_timeout": 5, "stall_timeout": 1.5, "backoff_max": 0.5}}}))
        gateway = local_system.Gateway(config_path)
        url = gateway.url.rstrip("/")
        try:
            until(lambda: health(url)[0] == 200, "the launcher's watch synced", seconds=60)
            status, body = health(url)
            assert body["status"] == "ok" and body["launcher"]["backend"] == "kubernetes"
            assert body["launcher"]["watches"]["pods"]["state"] == "synced"
            assert launcher_healthy(url) == 1

            cluster.faults.stall_watches(True)
            # The launcher relists after each stall it finds, so the answer seen failing is kept.
            seen = []
            until(lambda: seen.append(health(url)) or seen[-1][0] == 503, "the stall reported", seconds=60)
            body = seen[-1][1]
            assert body["status"] == "failing" and body["launcher"]["ok"] is False
            assert "stalled" in {watch["state"] for watch in body["launcher"]["watches"].values()}
            until(lambda: launcher_healthy(url) == 0, "the stall in the metrics", seconds=60)

            cluster.faults.stall_watches(False)
            cluster.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                    "metadata": {"name": pod_name("ops", "alice"), "labels": labels("ops", "alice"),
                                                 "annotations": {"hebi/user-name": "alice"}},
                                    "spec": {"containers": [{"name": "web", "image": "localhost/hebi-web:x"}]}})
            until(lambda: health(url)[0] == 200, "healthy again after the stall", seconds=60)
            assert launcher_healthy(url) == 1
        finally:
            gateway.stop()
