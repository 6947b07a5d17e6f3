"""Savu's parameter expressions (``angles``, ``log_func``) as the runner evaluates them: the one bounded
grammar of ``hebi_common.savu.expressions``, with NumPy functions allowed. Never ``eval``."""
from __future__ import annotations

from typing import Any

from hebi_common.savu.expressions import NUMPY_FUNCTIONS, ExpressionError
from hebi_common.savu.expressions import evaluate as _evaluate

__all__ = ["NUMPY_FUNCTIONS", "ExpressionError", "evaluate"]


def evaluate(text: str, names: dict[str, Any] | None = None) -> Any:
    """Value of ``text`` with ``names`` bound (e.g. ``{"sino": array}``) and ``np.<function>`` allowed."""
    return _evaluate(text, names, numpy=True)
