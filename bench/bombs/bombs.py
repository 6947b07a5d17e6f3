"""The bombs of issue 9 (finding 9 and 10): small inputs that expand hugely. Made here once, for the
security suite (tests/security/test_expansion_bombs.py, which sends them through the gateway) and for this
benchmark (run.py, which measures what they cost the API's and the dataserver's workers).

Every builder writes compressed chunks straight into the file (``write_direct_chunk``), so making a
gigabyte bomb costs one compression of one chunk, never the gigabyte itself.
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import h5py
import numpy as np

#: Preview, angle and tuning texts whose value (or whose cost to evaluate) is astronomically large.
CPU_BOMBS = ["mid:mid+9**9**9**9", "9**9**9**9", "2**2**2**2**2**2**2", "mid:mid+10**100000", "10**10**10",
             "mid:mid+(9**9)**(9**9)", "1" * 5000, "mid+" + "+".join(["mid"] * 3000), "(" * 500 + "1" + ")" * 500,
             "9e99999", "-9**9**9", "mid:mid+1<<100000", "mid:mid+pow(9,9**9)", "mid:mid+__import__('os')"]
ANGLE_BOMBS = ["np.linspace(0, 180, 9**9**9)", "np.ones(10**12)", "np.arange(0, 10**15)",
               "np.linspace(0, 180, 91) * 9**9**9"]


def zeros_stream(nbytes: int, piece: int = 16 << 20) -> bytes:
    """zlib-compressed ``nbytes`` of zeros (what h5py's gzip filter stores), made piece by piece."""
    compressor = zlib.compressobj(6)
    zeros = bytes(min(piece, nbytes))
    out, left = [], nbytes
    while left:
        take = min(left, len(zeros))
        out.append(compressor.compress(zeros[:take]))
        left -= take
    out.append(compressor.flush())
    return b"".join(out)


def chunk_bomb(path: Path, chunk_bytes: int = 1 << 30) -> str:
    """One float32 dataset ``/bomb`` whose single gzip chunk decompresses to ``chunk_bytes``; reading any
    one value of it decompresses the whole chunk. Returns the dataset's path."""
    side = int((chunk_bytes // 4) ** 0.5)
    with h5py.File(path, "w") as f:
        dataset = f.create_dataset("bomb", shape=(side, side), dtype="<f4", chunks=(side, side), compression="gzip")
        dataset.id.write_direct_chunk((0, 0), zeros_stream(side * side * 4))
    return "/bomb"


def link_bomb(path: Path, links: int = 100_000) -> str:
    """A group ``/many`` of ``links`` soft links (to one small dataset). Returns the group's path."""
    with h5py.File(path, "w", libver="latest") as f:
        f["target"] = np.zeros(3)
        group = f.create_group("many")
        for i in range(links):
            group[f"link{i:06d}"] = h5py.SoftLink("/target")
    return "/many"


def process_list_bomb(path: Path, expanded_bytes: int = 1_200_000_000, piece: int = 16 << 20) -> Path:
    """A Savu process list (valid in every other way) whose first plugin's parameter text is a gzip'd
    array of ``expanded_bytes`` bytes: about 1 MB on disk, the file the issue uploaded."""
    from hebi_common.savu.catalogue import load_catalogue
    from hebi_common.savu.operations import apply_operations
    from hebi_common.savu.process_list import ProcessList, write_process_list
    process_list, _, _ = apply_operations(ProcessList(), [{"op": "add", "name": n} for n in
                                                          ("NxtomoLoader", "MedianFilter")], load_catalogue("bundled"))
    write_process_list(process_list, path)
    width = 1024
    rows = expanded_bytes // width
    per_chunk = piece // width
    compressed = zeros_stream(per_chunk * width)
    with h5py.File(path, "a") as f:
        del f["entry/plugin/1/data"]
        data = f.create_dataset("entry/plugin/1/data", shape=(rows,), dtype=f"S{width}", chunks=(per_chunk,),
                                compression="gzip")
        for start in range(0, rows - per_chunk + 1, per_chunk):
            data.id.write_direct_chunk((start,), compressed)
    return path


def nested_json(depth: int) -> bytes:
    """A process-list document whose plugins field is ``depth`` lists deep."""
    return b'{"plugins":' + b"[" * depth + b"]" * depth + b"}"


def flat_json_bomb(items: int) -> bytes:
    """Many small objects: large but shallow (bounded by size, not depth)."""
    return json.dumps({"plugins": [{"name": "MedianFilter"}] * items}).encode()
