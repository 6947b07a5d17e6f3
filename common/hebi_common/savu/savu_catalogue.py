"""The plugin catalogue read from a real Savu installed in this Python (``plugin_catalogue: savu|auto``).

It asks Savu itself, through the calls savu_config makes (``savu.plugins.utils.populate_plugins``, each
plugin's tools ``get_param_definitions``), and turns the answer into hebi's catalogue shape. Facts Savu
does not give in that form (our one-line summaries, harvested citations) come from the bundled
catalogue when the plugin is in both. Plugins that fail to import are listed in ``failed``, as
savu_config does, and are left out.

This module is only imported when ``savu`` is importable; the CI machine has no Savu, so it is
exercised by a fake ``savu`` package in tests/common/test_savu_catalogue.py.
"""
from __future__ import annotations

import inspect
import json
from typing import Any

from .catalogue import Catalogue, Plugin

KIND_BY_PACKAGE = {"loaders": "loader", "savers": "saver", "corrections": "corrector", "filters": "filter",
                   "ring_removal": "filter", "centering": "centering", "reconstructions": "reconstruction"}


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return str(value)


def _dependency(raw: Any) -> dict | None:
    if not raw:
        return None
    if isinstance(raw, str):
        return {"parent": raw, "values": None, "rule": "shown only while the parent value is not None"}
    if isinstance(raw, dict) and len(raw) == 1:
        parent, values = next(iter(raw.items()))
        if isinstance(values, str):
            return {"parent": parent, "values": values.split(), "raw": values,
                    "rule": "shown only while str(parent value) is one of values"}
        return {"parent": parent, "values": [str(v) for v in values],
                "rule": "shown only while str(parent value) is one of values"}
    return None


def _description(raw: Any) -> str:
    if isinstance(raw, dict):
        return str(raw.get("summary", ""))
    return str(raw or "")


def catalogue_from_savu(bundled: Catalogue) -> Catalogue:
    import savu.plugins.utils as pu  # the real Savu
    try:
        from savu.version import __version__ as version
    except ImportError:
        version = "unknown"
    failed: dict[str, str] = {}
    _import_all_plugins(pu, failed)
    loader_base = _optional_class("savu.plugins.loaders.base_loader", "BaseLoader")
    saver_base = _optional_class("savu.plugins.savers.base_saver", "BaseSaver")
    gpu_base = _optional_class("savu.plugins.driver.gpu_plugin", "GpuPlugin")
    plugins: dict[str, Plugin] = {}
    for name, cls in sorted(getattr(pu, "plugins", {}).items()):
        try:
            plugins[name] = _plugin(name, cls, bundled.get(name), loader_base, saver_base, gpu_base)
        except Exception as err:  # noqa: BLE001 - savu_config also carries on and reports the plugin as unavailable
            failed[name] = f"{type(err).__name__}: {err}"
    return Catalogue(plugins, source="savu", savu_version=str(version),
                     framework_citations=bundled.framework_citations, failed=failed)


def _import_all_plugins(pu, failed: dict[str, str]) -> None:
    """Import every plugin module so that Savu's ``register_plugin`` fills ``pu.plugins``: through
    savu_config's own ``populate_plugins`` when there is one, else by walking ``savu.plugins``."""
    if hasattr(pu, "populate_plugins"):
        pu.populate_plugins()
        return
    try:
        from scripts.config_generator.config_utils import populate_plugins  # savu_config's way
        populate_plugins()
        return
    except Exception:  # noqa: BLE001 - not installed with the scripts, or an older layout: walk the package
        pass
    import importlib
    import pkgutil

    import savu.plugins
    for info in pkgutil.walk_packages(savu.plugins.__path__, "savu.plugins."):
        if info.name.endswith("_tools") or ".driver." in info.name or ".utils." in info.name:
            continue
        try:
            importlib.import_module(info.name)
        except Exception as err:  # noqa: BLE001 - savu_config reports such plugins as unavailable and carries on
            failed[info.name.rsplit(".", 1)[-1]] = f"{type(err).__name__}: {err}"


def _optional_class(module: str, name: str):
    try:
        return getattr(__import__(module, fromlist=[name]), name)
    except Exception:  # noqa: BLE001 - an older Savu without this class
        return None


def _plugin(name, cls, known: Plugin | None, loader_base, saver_base, gpu_base) -> Plugin:
    instance = cls()
    tools = instance.get_plugin_tools()
    if hasattr(tools, "_populate_default_parameters"):
        tools._populate_default_parameters()
    definitions = tools.get_param_definitions()
    parameters = []
    for pname, spec in definitions.items():
        visibility = spec.get("visibility", "basic")
        if visibility == "ignore":
            continue
        parameters.append({
            "name": pname, "dtype": str(spec.get("dtype", "")).replace(" ", "") or "str",
            "default": _jsonable(spec.get("default")), "visibility": visibility,
            "options": _jsonable(list(spec["options"])) if spec.get("options") else None,
            "dependency": _dependency(spec.get("dependency")),
            "description": _description(spec.get("description")),
        })
    module = cls.__module__
    package = module.split(".")[2] if module.count(".") >= 2 else ""
    is_loader = bool(loader_base and issubclass(cls, loader_base))
    kind = "loader" if is_loader else "saver" if saver_base and issubclass(cls, saver_base) else \
        KIND_BY_PACKAGE.get(package, "other")
    needs_gpu = bool(gpu_base and issubclass(cls, gpu_base))
    summary = known.summary if known else (inspect.getdoc(type(tools)) or "").split("\n")[0]
    return Plugin(name=name, module=module, kind=kind, category=known.category if known else package or kind,
                  needs_gpu=needs_gpu, driver="gpu" if needs_gpu else "loader" if is_loader else "cpu",
                  summary=summary, parameters=tuple(parameters),
                  citations=known.citations if known else ())
