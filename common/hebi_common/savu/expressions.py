"""Savu's small expression languages (preview fields such as ``mid-2``, ``angles = "np.linspace(0, 180,
91)"``, ``log_func = "np.nan_to_num(-np.log(sino))"``), checked and evaluated with bounded cost.

Savu hands these texts to Python's ``eval``; hebi never does. One grammar, used by the editor (which
only checks), job submission and the runner (which evaluate): numbers, ``+ - * / // %``, comparisons,
lists, the names the caller binds and, where the caller allows them, a short list of NumPy functions.
Everything is bounded so no text can burn CPU or memory: no power operator, a bounded text length and
node count, every number at every step within ``MAX_MAGNITUDE``, and arrays within ``MAX_ELEMENTS``
(checked *before* NumPy allocates them).
"""
from __future__ import annotations

import ast
import math
import operator
from typing import Any

# numpy is imported inside the functions that use it: a session's API that never evaluates an
# expression does not carry numpy's memory (bench/session).

MAX_LENGTH = 200
MAX_NODES = 64
MAX_MAGNITUDE = 1e9
MAX_ELEMENTS = 10_000_000

NUMPY_FUNCTIONS = frozenset({
    "linspace", "arange", "array", "asarray", "log", "log10", "exp", "sqrt", "abs", "nan_to_num", "clip",
    "maximum", "minimum", "deg2rad", "rad2deg", "float32", "float64", "pi", "e", "inf", "nan", "where",
    "concatenate", "ones", "zeros", "mean", "median",
})
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}


class ExpressionError(ValueError):
    """A text outside the grammar or beyond its bounds; the message quotes the text."""


def parse(text: Any, names: frozenset[str] | set[str], *, numpy: bool = False) -> ast.expr:
    """The checked syntax tree of ``text``: every node in the grammar, every literal within bounds.
    This is all the editor needs to accept a value; evaluation adds the bounds that depend on names."""
    source = str(text).strip()
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"'{source[:40]}...' is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise ExpressionError(f"'{source}' is not a valid expression ({getattr(exc, 'msg', exc)})") from None
    nodes = list(ast.walk(tree.body))
    if len(nodes) > MAX_NODES:
        raise ExpressionError(f"'{source}' is too long an expression (more than {MAX_NODES} parts)")
    for node in nodes:
        _check_node(node, names, numpy, source)
    return tree.body


def _check_node(node: ast.AST, names, numpy: bool, text: str) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)) or \
                not math.isfinite(node.value) or abs(node.value) > MAX_MAGNITUDE:
            raise ExpressionError(f"'{text}': {node.value!r} is not a number within +-{MAX_MAGNITUDE:.0e}")
        return
    if isinstance(node, ast.Name):
        if node.id in names or (numpy and node.id in ("np", "numpy")):
            return
        raise ExpressionError(f"'{text}': unknown name '{node.id}' (allowed: {', '.join(sorted(names)) or 'none'})")
    if isinstance(node, ast.BinOp):
        if type(node.op) in _BINARY:
            return
        raise ExpressionError(f"'{text}': the operator {ast.unparse(node)!r} is not allowed "
                              "(use + - * / // %; there is no power operator)")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return
    if isinstance(node, (ast.List, ast.Tuple, ast.Load, ast.operator, ast.unaryop, ast.cmpop)):
        return
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        return
    if numpy and isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id in ("np", "numpy") and node.attr in NUMPY_FUNCTIONS:
            return
        raise ExpressionError(f"'{text}': '{ast.unparse(node)}' is not an allowed numpy function "
                              f"({', '.join(sorted(NUMPY_FUNCTIONS))})")
    if numpy and isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return  # its func is checked as an Attribute node of its own
    if numpy and isinstance(node, ast.keyword) and node.arg:
        return
    allowed = "numbers, + - * / // %" + (", lists and numpy functions "
                                           f"({', '.join(sorted(NUMPY_FUNCTIONS))})" if numpy else "")
    raise ExpressionError(f"'{text}': only {allowed} and the names {', '.join(sorted(names)) or '(none)'} "
                          f"are allowed, not '{ast.unparse(node)}'")


def evaluate(text: Any, names: dict[str, Any] | None = None, *, numpy: bool = False,
             max_elements: int = MAX_ELEMENTS) -> Any:
    """Value of ``text`` with ``names`` bound; ``numpy=True`` also allows ``np.<function>`` calls."""
    import numpy as np
    names = dict(names or {})
    tree = parse(text, frozenset(names), numpy=numpy)
    try:
        # Arrays may be as large as the largest one given (a chunk of sinograms), else max_elements.
        limit = max([max_elements] + [int(np.size(v)) for v in names.values() if isinstance(v, np.ndarray)])
        return _eval(tree, names, str(text).strip(), limit)
    except ExpressionError:
        raise
    except (ArithmeticError, ValueError, TypeError, IndexError) as exc:
        raise ExpressionError(f"'{str(text).strip()}' cannot be evaluated ({type(exc).__name__}: {exc})") from None


def _bounded(value: Any, text: str, limit: int) -> Any:
    import numpy as np
    if isinstance(value, np.ndarray):
        if value.size > limit:
            raise ExpressionError(f"'{text}' makes an array of {value.size} values (at most {limit})")
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if math.isfinite(value) and abs(value) > MAX_MAGNITUDE:
            raise ExpressionError(f"'{text}' reaches {float(value):.3g}, beyond +-{MAX_MAGNITUDE:.0e}")
    return value


def _size(value: Any) -> int:
    import numpy as np
    return int(np.size(value)) if isinstance(value, (np.ndarray, list)) else 1


def _eval(node: ast.AST, names: dict[str, Any], text: str, limit: int) -> Any:
    import numpy as np
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(item, names, text, limit) for item in node.elts]
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.Attribute):
        return getattr(np, node.attr)
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, names, text, limit), _eval(node.right, names, text, limit)
        if isinstance(left, (np.ndarray, list)) or isinstance(right, (np.ndarray, list)):
            shape = np.broadcast_shapes(np.shape(left), np.shape(right))  # before NumPy allocates it
            if math.prod(shape) > limit:
                raise ExpressionError(f"'{text}' makes an array of {math.prod(shape)} values (at most {limit})")
        return _bounded(_BINARY[type(node.op)](left, right), text, limit)
    if isinstance(node, ast.UnaryOp):
        return _bounded(_UNARY[type(node.op)](_eval(node.operand, names, text, limit)), text, limit)
    if isinstance(node, ast.Compare):
        return _COMPARE[type(node.ops[0])](_eval(node.left, names, text, limit), _eval(node.comparators[0], names, text, limit))
    if isinstance(node, ast.Call):
        function = _eval(node.func, names, text, limit)
        args = [_eval(a, names, text, limit) for a in node.args]
        kwargs = {k.arg: _eval(k.value, names, text, limit) for k in node.keywords}
        _check_allocation(node.func.attr, args, kwargs, text, limit)
        return _bounded(function(*args, **kwargs), text, limit)
    raise ExpressionError(f"'{text}': cannot evaluate '{ast.unparse(node)}'")


def _check_allocation(name: str, args: list, kwargs: dict, text: str, limit: int) -> None:
    """Array-making functions: the size they would allocate, known before calling them."""
    count = 0
    if name == "linspace":
        count = int(kwargs.get("num", args[2] if len(args) > 2 else 50))
    elif name == "arange":
        bounds = [float(a) for a in args[:3]]
        start, stop, step = (0.0, bounds[0], 1.0) if len(bounds) == 1 else (bounds + [1.0])[:3]
        count = math.ceil((stop - start) / step) if step else 0
    elif name in ("ones", "zeros"):
        shape = kwargs.get("shape", args[0] if args else 0)
        count = math.prod(shape) if isinstance(shape, (list, tuple)) else int(shape)
    else:
        count = sum(_size(a) for a in args)
    if count > limit:
        raise ExpressionError(f"'{text}': np.{name} would make {count} values (at most {limit})")
