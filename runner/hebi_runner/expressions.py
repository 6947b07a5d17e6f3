"""Savu stores some parameters as Python expressions (``angles = "np.linspace(0, 180, 91)"``,
``log_func = "np.nan_to_num(-np.log(sino))"``) and evaluates them. We never ``eval`` user text: this
module evaluates only arithmetic, numbers, lists, the names given by the caller and a short list of
NumPy functions, and says which part of the text it refused."""
from __future__ import annotations

import ast
import operator
from typing import Any

import numpy as np

NUMPY_FUNCTIONS = {
    "linspace", "arange", "array", "asarray", "log", "log10", "exp", "sqrt", "abs", "nan_to_num", "clip",
    "maximum", "minimum", "deg2rad", "rad2deg", "float32", "float64", "pi", "e", "inf", "nan", "where",
    "concatenate", "ones", "zeros", "mean", "median",
}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow, ast.Mod: operator.mod}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}


class ExpressionError(ValueError):
    pass


def evaluate(text: str, names: dict[str, Any] | None = None) -> Any:
    """Value of ``text`` with ``names`` bound (e.g. ``{"sino": array}``); ``np``/``numpy`` are the
    NumPy functions above."""
    names = dict(names or {})
    try:
        tree = ast.parse(str(text).strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"'{text}' is not a valid expression ({exc.msg})") from None
    return _eval(tree.body, names, text)


def _eval(node: ast.AST, names: dict[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex, str)):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(item, names, text) for item in node.elts]
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        raise ExpressionError(f"'{text}': unknown name '{node.id}' (allowed: {', '.join(sorted(names)) or 'none'})")
    if isinstance(node, ast.Attribute):
        return _numpy_attribute(node, text)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_eval(node.left, names, text), _eval(node.right, names, text))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand, names, text))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        return _COMPARE[type(node.ops[0])](_eval(node.left, names, text), _eval(node.comparators[0], names, text))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        function = _numpy_attribute(node.func, text)
        args = [_eval(a, names, text) for a in node.args]
        kwargs = {k.arg: _eval(k.value, names, text) for k in node.keywords if k.arg}
        return function(*args, **kwargs)
    raise ExpressionError(f"'{text}': only arithmetic and numpy functions ({', '.join(sorted(NUMPY_FUNCTIONS))}) "
                          "are allowed")


def _numpy_attribute(node: ast.Attribute, text: str) -> Any:
    if isinstance(node.value, ast.Name) and node.value.id in ("np", "numpy") and node.attr in NUMPY_FUNCTIONS:
        return getattr(np, node.attr)
    raise ExpressionError(f"'{text}': '{ast.unparse(node)}' is not an allowed numpy function")
