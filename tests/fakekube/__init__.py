"""A faithful fake of a one-node Kubernetes cluster for tests: an API server (aiohttp) speaking the real
REST paths, with resourceVersions, watches, bookmarks, 410 Gone, conflicts, schema validation, graceful
deletion and garbage collection, faults on demand, and a kubelet that runs the pods with podman.
See README.md beside this file for what is faithful and what is not."""
from .cluster import FakeCluster

__all__ = ["FakeCluster"]
