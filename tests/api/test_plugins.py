"""The plugin catalogue as a scientist's browser sees it."""
from __future__ import annotations


def test_search_forgives_case_and_typos(api):
    answer = api.get("/api/plugins?q=PAGNIN")
    assert answer.status_code == 200
    assert answer.json["plugins"][0]["name"] == "PaganinFilter"
    assert answer.json["source"] == "bundled" and answer.json["savu_version"] == "4.2"
    everything = api.get("/api/plugins").json["plugins"]
    assert len(everything) == 43 and [p["name"] for p in everything] == sorted(p["name"] for p in everything)
    by_module = api.get("/api/plugins?q=reconstructions.astra_recons").json["plugins"]
    assert {p["name"] for p in by_module} >= {"AstraReconCpu", "AstraReconGpu"}
    by_category = api.get("/api/plugins?q=dezinger").json["plugins"]
    assert {p["name"] for p in by_category} == {"Dezinger", "DezingerSinogram"}
    assert api.get("/api/plugins?q=qqqzzz").json["plugins"] == []


def test_one_plugin_with_everything_the_editor_needs(api):
    answer = api.get("/api/plugins/AstraReconGpu")
    assert answer.status_code == 200
    plugin = answer.json
    assert plugin["kind"] == "reconstruction" and plugin["needs_gpu"] is True and plugin["summary"]
    by_name = {p["name"]: p for p in plugin["parameters"]}
    algorithm = by_name["algorithm"]
    assert algorithm["dtype"] == "str" and algorithm["default"] == "FBP_CUDA"
    assert "SIRT_CUDA" in algorithm["options"] and algorithm["visibility"] == "basic"
    assert by_name["FBP_filter"]["dependency"]["parent"] == "algorithm"
    assert by_name["centre_of_rotation"]["number"] == 1
    assert by_name["n_iterations"]["number"] is None  # hidden while the algorithm is FBP_CUDA
    assert len(plugin["citations"]) == 3


def test_lookup_forgives_case_and_accepts_the_module(api):
    assert api.get("/api/plugins/medianfilter").json["name"] == "MedianFilter"
    assert api.get("/api/plugins/savu.plugins.filters.denoising.median_filter").json["name"] == "MedianFilter"


def test_unknown_plugin_is_404_with_a_suggestion(api):
    answer = api.get("/api/plugins/MedianFiltr")
    assert answer.status_code == 404
    assert "MedianFilter" in answer.json["error"]


def test_collections(api):
    collections = api.get("/api/plugins/collections").json["collections"]
    assert "TiffSaver" in collections["saver"]


def test_openapi_describes_plugins_and_process_lists(api):
    document = api.get("/api/openapi.json").json
    assert document["openapi"].startswith("3.")
    for path in ("/plugins", "/plugins/{name}", "/process-lists", "/process-lists/{path}",
                 "/process-lists/{path}/operations", "/files"):
        assert path in document["paths"], path
    described = document["paths"]["/process-lists/{path}"]
    assert {"get", "post", "put", "delete"} <= set(described)
    assert "412" in described["put"]["responses"] and "application/x-hdf5" in described["put"]["requestBody"]["content"]
    schemas = document["components"]["schemas"]
    assert {"ProcessList", "PluginEntry", "Loop", "Operation", "Plugin", "Error"} <= set(schemas)

    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)
    for ref in refs(document):  # every reference points at something that exists
        _, section, kind, name = ref.split("/")
        assert name in document["components"][kind], ref


def test_openapi_document_is_valid_openapi(api):
    from openapi_spec_validator import validate
    validate(api.get("/api/openapi.json").json)
