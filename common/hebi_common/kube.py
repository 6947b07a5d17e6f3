"""How hebi's parts reach a Kubernetes API server: the launcher (session pods) and the API (job pods).

Either a kubeconfig file (and a context of it), or the pod's own ServiceAccount. The kubernetes client
is imported only when this is called, so only the parts that talk to a cluster need it installed.
"""
from __future__ import annotations

from pathlib import Path

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class NoCluster(Exception):
    """No usable kubeconfig or ServiceAccount; the message says which and why."""


def connect(kubeconfig: str, context: str = "", namespace: str = ""):
    """An ``ApiClient`` and the namespace to use: ``namespace`` when set, else the kubeconfig context's
    or the ServiceAccount's, else ``default``.

    urllib3's own retries are off: each caller retries in its own way (the launcher's informer with
    backoff, the job poller at its next round), and hidden retries would make a stalled or unreachable
    server look like a slow one for several timeouts."""
    try:
        from kubernetes import client
        from kubernetes import config as kube_config
    except ImportError:
        raise NoCluster("the kubernetes client is not installed") from None
    configuration = client.Configuration()
    try:
        if kubeconfig:
            kube_config.load_kube_config(config_file=kubeconfig, context=context or None,
                                         client_configuration=configuration)
            contexts, active = kube_config.list_kube_config_contexts(config_file=kubeconfig)
            if context:
                active = next(c for c in contexts if c["name"] == context)
            found = (active.get("context") or {}).get("namespace", "")
        else:
            kube_config.load_incluster_config(client_configuration=configuration)
            found = Path(SERVICE_ACCOUNT_NAMESPACE).read_text().strip()
    except (kube_config.ConfigException, OSError, StopIteration) as err:
        raise NoCluster(str(err) or type(err).__name__) from None
    configuration.retries = False
    return client.ApiClient(configuration), namespace or found or "default"
