"""The images build_docker_images.sh makes: each runs its component offline, as a non-root user, with
its labels, without compilers; the gateway's carries no HDF5 stack; a second build builds nothing."""
from __future__ import annotations

import json
import subprocess

import pytest
from images_support import NAMES, build, images, podman_env, run  # noqa: F401 (images is a fixture)

pytestmark = pytest.mark.timeout(3000)  # the first test may build every image from scratch

LABELS = ("title", "description", "version", "source", "licenses", "revision")


def test_every_component_has_its_image(images):
    assert sorted(images) == sorted(NAMES)
    for name, tag in images.items():
        assert tag.startswith(f"localhost/hebi-{name}:")


@pytest.mark.parametrize("name, command", [
    ("gateway", ("hebi-gateway", "--help")),
    ("gateway", ("pod_launcher", "--help")),
    ("api", ("python", "-c", "import hebi_api.app, hebi_api.jobs.drmaa_backend")),
    ("api", ("hebi-runner", "--help")),
    ("api", ("python", "-c", "import gunicorn, hebi_runner.pipeline")),
    # Users' .m scripts (code jobs in the pod, Kubernetes Jobs): Octave runs without its GUI's Qt.
    ("api", ("octave-cli", "--no-init-file", "--no-window-system", "--eval", "assert(sum((1:4) .^ 2) == 30)")),
    ("dataserver", ("python", "-c", "import gunicorn, hebi_dataserver.app; hebi_dataserver.app.create_app")),
])
def test_image_runs_its_component(images, name, command):
    done = run(images[name], *command)
    assert done.returncode == 0, done.stdout + done.stderr


def test_web_image_renders_a_config_nginx_accepts_on_a_read_only_root(images):
    # The pod's way: a read-only root filesystem and a writable /tmp for the rendered config.
    done = run(images["web"], "-t", options=("--read-only", "--tmpfs", "/tmp"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


#: In the gateway image: the gateway behind its nginx front, on the container's own loopback; a page
#: load without a login goes front -> route check -> gateway -> the login page.
FRONT_SMOKE = r"""
import subprocess, urllib.request, pathlib
pathlib.Path("/tmp/hebi.yaml").write_text("gateway: {port: 0, state_dir: /tmp/gw, front: {enabled: true}}\n")
gateway = subprocess.Popen(["hebi-gateway", "--config", "/tmp/hebi.yaml", "serve"], stdout=subprocess.PIPE, text=True)
url = gateway.stdout.readline().split("listening on ")[1].strip()
page = urllib.request.urlopen(urllib.request.Request(url + "some/page", headers={"Accept": "text/html"}))
print(page.status, page.url.replace(url, "/"), page.headers["Server"])
gateway.terminate()
gateway.wait(10)
"""


def test_gateway_image_runs_the_gateway_behind_its_nginx_front(images):
    done = run(images["gateway"], "-c", FRONT_SMOKE, entrypoint="python")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == ["200", "/gateway/login?next=/some/page", "nginx"], done.stdout + done.stderr


def test_web_image_serves_the_built_web_app(images):
    done = run(images["web"], "-c", "test -s /opt/hebi-web/dist/index.html", entrypoint="/bin/sh")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", NAMES)
def test_image_runs_as_non_root_by_default(images, name):
    done = run(images[name], "-u", entrypoint="id")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() not in ("", "0")


@pytest.mark.parametrize("name", NAMES)
def test_image_has_oci_labels(images, name):
    inspected = subprocess.run(["podman", "image", "inspect", images[name]], env=podman_env(),
                               capture_output=True, text=True, check=True)
    labels = json.loads(inspected.stdout)[0]["Labels"]
    for label in LABELS:
        assert labels.get(f"org.opencontainers.image.{label}"), label
    assert labels["org.opencontainers.image.title"] == f"hebi-{name}"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"


@pytest.mark.parametrize("name", NAMES)
def test_image_has_no_compilers(images, name):
    done = run(images[name], "-c", "for c in gcc cc c++ g++ clang; do command -v $c; done; true",
               entrypoint="/bin/sh")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_gateway_image_has_no_hdf5_stack(images):
    done = run(images["gateway"], "python", "-c",
               "import importlib.util as u; print([m for m in ('numpy', 'h5py') if u.find_spec(m)])")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_second_build_builds_nothing(images):
    report, output = build()
    for name in NAMES:
        assert f"hebi-{name} unchanged: {images[name]}" in output
        assert report["images"][name] == report["images"][name] | {"tag": images[name], "built": False}
    assert "building" not in output


def test_no_podman_bridge_network_is_left(images):
    # Builds and runs here use --network none; kube play without hostNetwork would create this bridge.
    names = subprocess.run(["podman", "network", "ls", "--format", "{{.Name}}"], env=podman_env(),
                           capture_output=True, text=True, check=True).stdout.split()
    assert "podman-default-kube-network" not in names
