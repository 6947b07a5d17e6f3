"""The plugin catalogue: the bundled facts, tolerant search, and a real Savu's plugins when importable."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from hebi_common.savu import catalogue as catalogue_module
from hebi_common.savu.catalogue import CatalogueError, bundled_catalogue, load_catalogue


def test_bundled_catalogue_has_the_43_plugins_of_savu_42():
    catalogue = bundled_catalogue()
    assert len(catalogue) == 43 and catalogue.savu_version == "4.2"
    gpu = sorted(p.name for p in catalogue.all() if p.needs_gpu)
    assert gpu == ["AstraReconGpu", "CcpiDenoisingGpu", "MedianFilterGpu", "TomobarRecon", "TomobarRecon3d"]
    assert sum(p.is_loader for p in catalogue.all()) == 7
    assert [c.name for c in catalogue.framework_citations] == ["Hdf5", "MPI", "Savu", "Savu repository"]


@pytest.mark.parametrize("query, expected_first", [
    ("MedianFilter", "MedianFilter"), ("medianfilter", "MedianFilter"), ("medain", "MedianFilter"),
    ("astra", "AstraReconCpu"), ("paganin", "PaganinFilter"), ("pagnin", "PaganinFilter"),
    ("nxtomo", "NxtomoLoader"), ("ring_removal", None), ("tomobar3d", "TomobarRecon3d"),
    ("savers.tiff", "TiffSaver"),
])
def test_search_by_name_module_category_with_typos(query, expected_first):
    found = [p.name for p in bundled_catalogue().search(query)]
    assert found, query
    if expected_first:
        assert found[0] == expected_first, (query, found[:5])


def test_search_by_category_finds_the_whole_group_and_nonsense_finds_nothing():
    catalogue = bundled_catalogue()
    rings = {p.name for p in catalogue.search("ring removal")}
    assert rings >= {"RavenFilter", "RemoveAllRings", "RingRemovalSorting"}
    assert "MedianFilter" not in rings
    assert catalogue.search("zzzqqq") == []
    assert catalogue.suggest("Nxtomoloadr")[0] == "NxtomoLoader"


def test_collections_group_by_category():
    collections = bundled_catalogue().collections()
    assert "NxtomoLoader" in collections["loader"] and "RavenFilter" in collections["ring_removal"]


FAKE_SAVU = {
    "savu/__init__.py": "",
    "savu/version.py": "__version__ = '4.3-test'\n",
    "savu/plugins/__init__.py": "",
    "savu/plugins/driver/__init__.py": "",
    "savu/plugins/driver/gpu_plugin.py": "class GpuPlugin:\n    pass\n",
    "savu/plugins/loaders/__init__.py": "",
    "savu/plugins/loaders/base_loader.py": "class BaseLoader:\n    pass\n",
    "savu/plugins/loaders/my_loader.py": """
        from savu.plugins.loaders.base_loader import BaseLoader
        class Tools:
            '''Loads the facility's own format.'''
            def get_param_definitions(self):
                return {"preview": {"visibility": "basic", "dtype": "preview", "default": [],
                                    "description": {"summary": "What to load"}},
                        "in_datasets": {"visibility": "ignore", "dtype": "list", "default": []}}
        class MyLoader(BaseLoader):
            def get_plugin_tools(self):
                return Tools()
    """,
    "savu/plugins/filters/__init__.py": "",
    "savu/plugins/filters/gpu_smoother.py": """
        from savu.plugins.driver.gpu_plugin import GpuPlugin
        class Tools:
            '''Smooths on a GPU.'''
            def get_param_definitions(self):
                return {"width": {"visibility": "basic", "dtype": "int", "default": 3,
                                  "description": "Kernel width", "options": [3, 5]},
                        "mode": {"visibility": "advanced", "dtype": "str", "default": "a",
                                 "description": "Mode", "dependency": {"width": [5]}}}
        class GpuSmoother(GpuPlugin):
            def get_plugin_tools(self):
                return Tools()
    """,
    "savu/plugins/utils.py": """
        plugins = {}
        def populate_plugins():
            from savu.plugins.loaders.my_loader import MyLoader
            from savu.plugins.filters.gpu_smoother import GpuSmoother
            class Broken:
                def __init__(self):
                    raise ImportError("needs a library that is missing")
            plugins.update(MyLoader=MyLoader, GpuSmoother=GpuSmoother, Broken=Broken)
    """,
}


@pytest.fixture
def fake_savu(tmp_path: Path, monkeypatch):
    for name, text in FAKE_SAVU.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    load_catalogue.cache_clear()
    yield
    load_catalogue.cache_clear()
    for module in [m for m in sys.modules if m == "savu" or m.startswith("savu.")]:
        del sys.modules[module]


def test_a_real_savu_is_preferred_when_importable(fake_savu):
    catalogue = load_catalogue("auto")
    assert catalogue.source == "savu" and catalogue.savu_version == "4.3-test"
    assert sorted(catalogue.plugins) == ["GpuSmoother", "MyLoader"]
    assert "Broken" in catalogue.failed and "missing" in catalogue.failed["Broken"]
    loader = catalogue.get("MyLoader")
    assert loader.is_loader and loader.module == "savu.plugins.loaders.my_loader"
    assert [p["name"] for p in loader.parameters] == ["preview"]  # 'ignore' removes a parameter
    smoother = catalogue.get("GpuSmoother")
    assert smoother.needs_gpu and smoother.kind == "filter"
    mode = smoother.parameter("mode")
    assert mode["dependency"]["parent"] == "width" and mode["dependency"]["values"] == ["5"]
    assert load_catalogue("bundled").source == "bundled"


def test_without_savu_auto_is_bundled_and_savu_is_an_error(monkeypatch):
    load_catalogue.cache_clear()
    monkeypatch.setattr(catalogue_module, "savu_importable", lambda: False)
    try:
        assert load_catalogue("auto").source == "bundled"
        with pytest.raises(Exception):  # noqa: B017 - whatever the broken Savu raises
            load_catalogue("savu")
    finally:
        load_catalogue.cache_clear()


def test_a_broken_savu_under_auto_falls_back(monkeypatch, tmp_path):
    (tmp_path / "savu").mkdir()
    (tmp_path / "savu" / "__init__.py").write_text("raise RuntimeError('broken install')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    load_catalogue.cache_clear()
    try:
        assert load_catalogue("auto").source == "bundled"
        with pytest.raises(CatalogueError, match="broken install"):
            load_catalogue("savu")
    finally:
        load_catalogue.cache_clear()
        sys.modules.pop("savu", None)


def test_a_savu_without_populate_plugins_is_walked(tmp_path: Path, monkeypatch):
    """Savu 4.x fills ``plugins`` as each module is imported (register_plugin); walking the package finds them."""
    files = dict(FAKE_SAVU)
    files["savu/plugins/utils.py"] = """
        plugins = {}
        def register_plugin(cls):
            plugins[cls.__name__] = cls
            return cls
    """
    decorated = "        import savu.plugins.utils as pu\n        @pu.register_plugin\n        class "
    for key in ("savu/plugins/loaders/my_loader.py", "savu/plugins/filters/gpu_smoother.py"):
        for cls in ("MyLoader(", "GpuSmoother("):
            files[key] = files[key].replace("        class " + cls, decorated + cls)
    files["savu/plugins/filters/needs_missing_lib.py"] = "import a_library_that_is_not_there\n"
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    load_catalogue.cache_clear()
    try:
        catalogue = load_catalogue("savu")
        assert sorted(catalogue.plugins) == ["GpuSmoother", "MyLoader"]
        assert "needs_missing_lib" in catalogue.failed
    finally:
        load_catalogue.cache_clear()
        for module in [m for m in sys.modules if m == "savu" or m.startswith("savu.")]:
            del sys.modules[module]
