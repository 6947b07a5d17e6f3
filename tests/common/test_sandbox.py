"""The path sandbox: whatever a user types, they reach only files inside their own roots."""
import os
from pathlib import Path

import pytest

from hebi_common.config import RootConfig
from hebi_common.sandbox import Roots, SandboxError, resolve_in_root


@pytest.fixture
def tree(tmp_path: Path):
    """roots/data with a scan, a secret file beside the roots, and symlinks in and out."""
    data = tmp_path / "roots" / "data"
    (data / "scan").mkdir(parents=True)
    (data / "scan" / "1.nxs").write_bytes(b"x")
    (tmp_path / "roots" / "output").mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "roots" / "data-evil").mkdir()  # shares the root's name as a prefix
    os.symlink(tmp_path / "secret.txt", data / "link-out")
    os.symlink("/etc", data / "etc-link")
    os.symlink("..", data / "scan" / "up")  # stays inside: scan/up is data itself
    os.symlink("../link-out", data / "scan" / "chain")  # a link to a link that leads out
    os.symlink(data / "scan", data / "link-in")
    os.symlink(tmp_path / "roots" / "data-evil", data / "prefix-trick")
    roots = Roots.from_config({"data": RootConfig(path=str(data)),
                               "output": RootConfig(path=str(tmp_path / "roots" / "output"), writable=True)},
                              user="alice")
    return roots, data


HOSTILE = [
    "..",
    "../secret.txt",
    "scan/../../secret.txt",
    "scan/../..",
    "./../secret.txt",
    "scan/./../../secret.txt",
    "..\\secret.txt",
    "scan\\..\\..\\secret.txt",
    "....//../secret.txt",
    "scan/1.nxs/../../../secret.txt",
    "link-out",
    "etc-link/passwd",
    "etc-link",
    "scan/up/../secret.txt",
    "scan/chain",
    "scan/up/link-out",
    "prefix-trick",
    "prefix-trick/anything",
    "scan/1.nxs\x00.png",
    "\x00",
    "scan/\x00/x",
    "a" * 5000,
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_paths_are_refused(tree, hostile):
    roots, _ = tree
    with pytest.raises(SandboxError) as refused:
        roots.resolve("data", hostile)
    assert refused.value.status in (400, 403)
    assert refused.value.message


@pytest.mark.parametrize("ref", ["data/../secret.txt", "data/link-out", "data/etc-link/passwd", "../data/scan",
                                 "data/scan/chain", "nonexistent/x", "/", "", "data\x00/scan"])
def test_hostile_root_references_are_refused(tree, ref):
    roots, _ = tree
    with pytest.raises(SandboxError):
        roots.resolve_ref(ref)


@pytest.mark.parametrize("absolute", ["/etc/passwd", "//etc/passwd", "/../../etc/passwd"])
def test_absolute_paths_are_read_inside_the_root(tree, absolute):
    roots, data = tree
    try:
        resolved = roots.resolve("data", absolute)
    except SandboxError:
        return  # refusing is fine too
    assert data in resolved.parents


def test_percent_encoded_dots_are_only_names(tree):
    """URLs are decoded once by the web framework; what remains is a literal file name, inside the root."""
    roots, data = tree
    assert roots.resolve("data", "%2e%2e/secret.txt") == data / "%2e%2e" / "secret.txt"


@pytest.mark.parametrize("ok, expected", [
    ("scan/1.nxs", "scan/1.nxs"), ("/scan/1.nxs", "scan/1.nxs"), ("scan//1.nxs", "scan/1.nxs"),
    ("link-in/1.nxs", "scan/1.nxs"), ("scan/up/scan/1.nxs", "scan/1.nxs"), ("", "."), ("scan/new-file.nxs", "scan/new-file.nxs")])
def test_ordinary_paths_resolve_inside(tree, ok, expected):
    roots, data = tree
    assert roots.resolve("data", ok) == (data / expected).resolve()


def test_unknown_root_is_404_and_read_only_root_refuses_writing(tree):
    roots, _ = tree
    with pytest.raises(SandboxError) as unknown:
        roots.resolve("home", "x")
    assert unknown.value.status == 404 and "data" in unknown.value.message
    with pytest.raises(SandboxError) as read_only:
        roots.resolve("data", "new.nxs", for_writing=True)
    assert read_only.value.status == 403
    assert roots.resolve("output", "new.nxs", for_writing=True).name == "new.nxs"


def test_to_ref_round_trips(tree):
    roots, data = tree
    assert roots.to_ref(data / "scan" / "1.nxs") == "data/scan/1.nxs"
    assert roots.resolve_ref("data/scan/1.nxs")[1] == data / "scan" / "1.nxs"


def test_resolve_in_root_needs_no_existing_target(tmp_path):
    assert resolve_in_root(tmp_path.resolve(), "a/b/c.txt") == tmp_path.resolve() / "a" / "b" / "c.txt"
