"""labelSelector and fieldSelector, parsed the way the API server parses them (k8s.io/apimachinery's
labels and fields packages), as predicates over an object dict."""
from __future__ import annotations

import re
from collections.abc import Callable

from .errors import bad_request

Predicate = Callable[[dict], bool]

_SET = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQUALITY = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


def _split(selector: str) -> list[str]:
    """Terms are separated by commas outside parentheses (``a in (x,y),b``)."""
    terms, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return terms


def label_selector(selector: str | None) -> Predicate:
    if not selector or not selector.strip():
        return lambda obj: True
    tests: list[Callable[[dict], bool]] = []
    for term in _split(selector):
        equality = _EQUALITY.match(term)
        if equality:
            key, op, value = equality.groups()
            if op == "!=":
                tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                tests.append(lambda labels, k=key, v=value: k in labels and labels[k] == v)
            continue
        found = _SET.match(term)
        if not found:
            raise bad_request(f"unable to parse requirement: found '{term.strip()}', expected: in, notin, =, ==, !=, gt, lt")
        negated, key, op, values = found.groups()
        if op and negated:
            raise bad_request(f"unable to parse requirement: '!' may not precede {op} in '{term.strip()}'")
        if op:
            members = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                tests.append(lambda labels, k=key, m=members: labels.get(k) in m)
            else:
                tests.append(lambda labels, k=key, m=members: labels.get(k) not in m)
        elif negated:
            tests.append(lambda labels, k=key: k not in labels)
        else:
            tests.append(lambda labels, k=key: k in labels)
    return lambda obj: all(test(obj.get("metadata", {}).get("labels") or {}) for test in tests)


def _field(obj: dict, path: str) -> str:
    value: object = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(part)
    return "" if value is None else str(value)


def field_selector(selector: str | None, fields: frozenset[str]) -> Predicate:
    """Only the fields the resource supports (``fields``) may be selected on, as the real server insists."""
    if not selector or not selector.strip():
        return lambda obj: True
    tests: list[Callable[[dict], bool]] = []
    for term in _split(selector):
        found = _EQUALITY.match(term) or re.match(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if not found:
            raise bad_request(f'invalid selector: \'{selector}\'; can\'t understand \'{term.strip()}\'')
        path, op, value = found.groups()
        if path not in fields:
            raise bad_request(f'field label not supported: {path}')
        if op == "!=":
            tests.append(lambda obj, p=path, v=value: _field(obj, p) != v)
        else:
            tests.append(lambda obj, p=path, v=value: _field(obj, p) == v)
    return lambda obj: all(test(obj) for test in tests)
