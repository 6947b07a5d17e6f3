"""The small rules the runner shares with Savu: preview syntax, tuning ranges, Savu's Paganin formula."""
from __future__ import annotations

import numpy as np
import pytest

from hebi_runner.algorithms import paganin_filter
from hebi_runner.preview import PreviewError, preview_indices
from hebi_runner.tuning import combinations, tuned_values


def test_preview_syntax_as_savu_evaluates_it():
    rows = lambda entry, n: list(preview_indices([":", entry, ":"], (5, n, 4))[1])  # noqa: E731
    assert rows("mid", 6) == [2] and rows("mid", 7) == [3]  # mid = ceil(n/2) - 1
    assert rows("mid-1:mid+2", 6) == [1, 2, 3]
    assert rows("0:end:2", 7) == [0, 2, 4, 6]
    assert rows("end-2:end", 6) == [4, 5] and rows("-1", 6) == [5]
    assert rows("mid:mid+1:1:3", 8) == [2, 3, 4]  # chunk 3 around each index
    assert [len(i) for i in preview_indices([], (5, 6, 4))] == [5, 6, 4]
    with pytest.raises(PreviewError, match="selects nothing"):
        preview_indices([":", "mid:mid", ":"], (5, 6, 4))
    with pytest.raises(PreviewError, match="unknown name 'middle'"):
        preview_indices([":", "middle", ":"], (5, 6, 4))


def test_tuning_values_and_combinations():
    assert tuned_values("centre_of_rotation", "84:86:0.5;") == [84.0, 84.5, 85.0, 85.5]
    assert tuned_values("algorithm", "FBP;CGLS") == ["FBP", "CGLS"]
    assert tuned_values("denominator_scale", "1.0;") == [1.0]
    assert tuned_values("preview", "a;b") is None and tuned_values("size", 31) is None
    tuned, combos = combinations({"a": "1;2", "b": "x;y;z", "c": 3})
    assert [name for name, _ in tuned] == ["a", "b"] and len(combos) == 6
    assert combos[0] == {"a": 1, "b": "x", "c": 3} and combos[-1] == {"a": 2, "b": "z", "c": 3}


def test_paganin_follows_savus_formula():
    flat = np.full((31, 47), 0.5, dtype=np.float32)
    # A constant projection only has the zero frequency, where Savu's filter is (1 + 1j). (Savu centres
    # its filter at ceil(n/2) - 1, one pixel off numpy's zero frequency for even padded sizes; the port
    # keeps that, so this check uses odd sizes.)
    expected = abs(-0.5 * 10.0 * np.log(0.5 / np.sqrt(2)))
    assert np.allclose(paganin_filter(flat, ratio=10.0, pad_rows=4, pad_columns=4), expected, rtol=1e-4)
    noisy = flat + np.random.default_rng(0).normal(0, 0.02, flat.shape).astype(np.float32)
    filtered = paganin_filter(noisy, ratio=250.0, pad_rows=8, pad_columns=8)
    assert filtered.shape == flat.shape
    assert filtered.std() / filtered.mean() < noisy.std() / noisy.mean()  # a low-pass filter
