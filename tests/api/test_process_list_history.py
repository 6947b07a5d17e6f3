"""The editor's command line and its undo/redo/history: savu_config's commands typed as a line, and
every saved version kept in the user's state folder, so a new API (a reload, a new session) still
undoes. Bad lines get a 4xx naming the problem and change nothing."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES

from hebi_common.errors import UserError
from hebi_common.savu.commands import command_text, parse


@pytest.fixture
def processing(roots_dir: Path) -> Path:
    folder = roots_dir / "processing"
    shutil.copy(FIXTURES / "process_lists" / "basic_tomo_process.nxs", folder / "b.nxs")
    shutil.copy(FIXTURES / "process_lists" / "iterate_three_median_filters.nxs", folder / "iter.nxs")
    return folder


def line(api, path: str, text: str, etag: str | None = None):
    headers = {"If-Match": etag or api.get(f"/api/process-lists/{path}").headers["ETag"]}
    return api.post(f"/api/process-lists/{path}/command", json={"line": text}, headers=headers)


def names(body) -> list[tuple[str, str]]:
    return [(p["pos"], p["name"]) for p in body["plugins"]]


def test_savu_config_lines_become_operations():
    assert parse("mod 4.1 86").operations == [{"op": "mod", "pos": "4", "param": "1", "text": "86"}]
    assert parse("mod 2.preview.dim1.start 3").operations == [
        {"op": "mod", "pos": "2", "param": "preview", "text": "3", "dim": 1, "part": "start"}]
    assert parse("mod -g ratio  2.5").operations == [{"op": "mod", "all": True, "param": "ratio", "text": "2.5"}]
    assert parse("mod -d 3.kernel_size").operations == [{"op": "mod", "pos": "3", "param": "kernel_size", "default": True}]
    assert parse("mod 3.algorithm FBP;SIRT").operations[0]["text"] == "FBP;SIRT"
    assert parse("set 2 3 OFF").operations == [{"op": "set", "pos": ["2", "3"], "state": "off"}]
    assert parse("iterate --set 3 4 5").operations == [{"op": "iterate", "set": {"start": 3, "end": 4, "iterations": 5}}]
    assert parse("iterate --remove").operations == [{"op": "iterate", "remove": "all"}]
    assert parse("disp -v").operations == [{"op": "disp", "verbose": True, "datasets_only": False}]
    assert parse("ref * -d").operations == [{"op": "ref", "pos": "*", "defaults": True}]
    assert parse("expand 5.centre_of_rotation").operations == [{"op": "expand", "pos": "5", "param": "centre_of_rotation"}]
    assert parse("undo").special == "undo" and parse("params AstraReconCpu").argument == "AstraReconCpu"
    # The history shows clicks as the lines that would have done them.
    for text in ("add MedianFilter 3a", "rem 3 4", "move 5 2", "set 2 off", "mod 4.1 86", "mod -g ratio 2.5",
                 "mod -d 3.kernel_size", "iterate --set 3 4 5", "replace 4 AstraReconGpu", "dupl 3 5"):
        assert command_text(parse(text).operations[0]) == text


def test_mod_by_number_through_the_command_line(api, processing):
    answer = line(api, "b.nxs", "mod 3.1 4")  # RavenFilter's first parameter
    assert answer.status_code == 200, answer.json
    assert answer.json["command"]["operations"][0]["param"] == "1"
    shown = api.get("/api/process-lists/b.nxs/disp?start=3").json["plugins"][0]["parameters"][0]
    assert shown["value"] == 4


def test_undo_and_redo_survive_a_new_api(api, session_config, processing, session_context):
    first = line(api, "b.nxs", "rem 3")
    assert first.status_code == 200 and "RavenFilter" not in [n for _, n in names(first.json)]
    # A new client and app: the page reloaded, or the session restarted. The history is on disk.
    from conftest import signed_client

    from hebi_api.app import create_app

    fresh = signed_client(create_app(session_config, session_context), session_context)
    history = fresh.get("/api/process-lists/b.nxs/history").json
    assert [e["command"] for e in history["entries"]] == ["opened", "rem 3"] and history["can_undo"]
    undone = line(fresh, "b.nxs", "undo")
    assert undone.status_code == 200, undone.json
    assert ("3", "RavenFilter") in names(undone.json)
    assert undone.json["results"][0]["notes"] == ["Undone: rem 3"]
    redone = fresh.post("/api/process-lists/b.nxs/redo", headers={"If-Match": undone.json["etag"]})
    assert redone.status_code == 200 and "RavenFilter" not in [n for _, n in names(redone.json)]
    assert redone.json["history"]["can_redo"] is False


def test_undo_keeps_a_change_made_outside_the_editor(api, processing):
    line(api, "b.nxs", "set 3 off")
    shutil.copy(FIXTURES / "process_lists" / "iterate_three_median_filters.nxs", processing / "b.nxs")  # Files area
    history = api.get("/api/process-lists/b.nxs/history").json
    assert history["entries"][-1]["command"] == "(changed outside the editor)"
    back = line(api, "b.nxs", "undo")
    assert back.status_code == 200 and back.json["plugins"][2]["active"] is False  # the version before it
    forward = line(api, "b.nxs", "redo", back.json["etag"])
    assert [n for _, n in names(forward.json)][:3] == ["TomoPhantomLoader", "TomoPhantomArtifacts", "MedianFilter"]


def test_a_new_change_after_undo_ends_the_redo_branch(api, processing):
    line(api, "b.nxs", "set 3 off")
    line(api, "b.nxs", "undo")
    line(api, "b.nxs", "mod 3.1 5")
    history = api.get("/api/process-lists/b.nxs/history").json
    assert [e["command"] for e in history["entries"]] == ["opened", "mod 3.1 5"] and not history["can_redo"]


def test_nothing_to_undo_and_bad_lines_change_nothing(api, processing):
    before = (processing / "b.nxs").read_bytes()
    for text, status, words in (
        ("undo", 409, "Nothing to undo"), ("redo", 409, "Nothing to redo"),
        ("frobnicate 3", 400, "not a command"), ("mod 3", 400, "POS.PARAM"), ("mod 3.1", 400, "POS.PARAM"),
        ("mod 9.1 4", 404, ""), ("mod 3.nope 4", 400, "no parameter"), ("add NoSuchPlugin", 404, "Unknown plugin"),
        ("set 3 maybe", 400, "on or off"), ("iterate --set 1 x 2", 400, "iterate --set"), ("save", 400, "saved at once"),
        ("mod 2.preview.dimx 3", 400, "dimN"), ("params NoSuch", 404, "Unknown plugin"), ("", 400, "type a savu_config"),
        ("x" * 5000, 400, "longer"),
    ):
        answer = line(api, "b.nxs", text)
        assert answer.status_code == status, (text, answer.json)
        assert words in answer.json["error"], (text, answer.json)
    assert (processing / "b.nxs").read_bytes() == before
    stale = api.post("/api/process-lists/b.nxs/command", json={"line": "rem 3"}, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412 and (processing / "b.nxs").read_bytes() == before
    assert api.post("/api/process-lists/b.nxs/command", json={"lines": "rem 3"}).status_code == 400
    assert api.post("/api/process-lists/b.nxs/undo").status_code == 428


def test_views_through_the_command_line(api, processing):
    verbose = line(api, "b.nxs", "disp -v").json["results"][0]
    assert [p["name"] for p in verbose["plugins"]][:2] == ["NxtomoLoader", "DarkFlatFieldCorrection"]
    assert "description" in verbose["plugins"][1]["parameters"][0]
    assert line(api, "b.nxs", "coll").json["results"][0]["collections"]
    plugin = line(api, "b.nxs", "params AstraReconCpu").json["plugin"]
    assert plugin["name"] == "AstraReconCpu" and plugin["parameters"] and "citations" in plugin
    assert any(h["syntax"].startswith("mod -g") for h in line(api, "b.nxs", "help").json["help"])
    assert line(api, "iter.nxs", "iterate").json["results"][0]["loops"]
    cites = line(api, "b.nxs", "cite").json["results"][0]
    assert "framework" in cites and cites["plugins"][0]["name"] == "NxtomoLoader"


def test_the_history_keeps_a_bounded_number_of_versions(tmp_path, monkeypatch):
    from hebi_common.savu import history as history_module

    monkeypatch.setattr(history_module, "MAX_VERSIONS", 3)
    kept = history_module.ListHistory(tmp_path, "processing/x.nxs")
    for i in range(6):
        kept.record(f"v{i}".encode(), f"v{i + 1}".encode(), f"change {i + 1}")
    described = kept.describe(b"v6")
    assert [e["command"] for e in described["entries"]] == ["change 4", "change 5", "change 6"]
    assert len(list(kept.folder.glob("*.nxs"))) == 3  # the dropped versions' files are gone too
    content, done, index = kept.step(b"v6", -1)
    assert (content, done) == (b"v5", "change 6")
    kept.commit(index)
    kept.commit(kept.step(b"v5", -1)[2])  # back to v4, the oldest kept
    with pytest.raises(UserError, match="Nothing to undo"):
        kept.step(b"v4", -1)


def test_a_line_must_be_text(api, processing):
    before = (processing / "b.nxs").read_bytes()
    for body in ({"line": 5}, {"line": ["rem", "3"]}, {"line": None}, [], "rem 3"):
        answer = api.post("/api/process-lists/b.nxs/command", json=body, headers={"If-Match": "*"})
        assert answer.status_code == 400 and answer.json["error"], body
    assert api.post("/api/process-lists/nope.nxs/command", json={"line": "disp"}).status_code == 404
    assert (processing / "b.nxs").read_bytes() == before
