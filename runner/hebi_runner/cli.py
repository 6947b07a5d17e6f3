"""``hebi-runner DATA PROCESS_LIST OUT_FOLDER``: Savu's command line for the options that matter here.

Exit codes: 0 done, 1 failed while running (see run_log/user.log), 2 refused before any work
(unsupported plugin or parameter, unreadable data, a file outside the job's folders), 3 stopped by a
killsignal file. On failure the last stderr line is ``hebi-runner: <reason>``, one line naming the
plugin, parameter or file; a run that failed while running ends its user.log with the same line.
"""
from __future__ import annotations

import argparse
import json
import sys

from hebi_runner.errors import RunnerError
from hebi_runner.pipeline import RunOptions, one_line, run_process_list


def _preview(text: str):
    """``--preview ':,mid-1:mid+2,:'`` or a JSON list ``'[":", "mid", ":"]'``."""
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hebi-runner", description="Run a Savu process list without Savu "
                                     "(algotom/scipy on CPU), writing Savu's output layout and user.log.")
    parser.add_argument("data", help="NeXus/HDF5 scan (NxtomoLoader) or folder of TIFFs (ImageLoader)")
    parser.add_argument("process_list", help="Savu process list (.nxs)")
    parser.add_argument("out_folder", help="folder in which the run's output folder is made")
    parser.add_argument("-f", "--folder", help="output folder name (default: <YYYYmmddHHMMSS>_<data stem>)")
    parser.add_argument("--preview", type=_preview, help="override the loader's preview, one entry per "
                        "dimension, e.g. ':,mid-1:mid+2,:'")
    parser.add_argument("-n", "--workers", type=int, help="worker processes (default: all CPUs)")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print user.log lines")
    args = parser.parse_args(argv)
    options = RunOptions(folder=args.folder, preview=args.preview, workers=args.workers,
                         echo=None if args.quiet else print)
    try:
        result = run_process_list(args.data, args.process_list, args.out_folder, options)
    except RunnerError as exc:
        # The last stderr line is the reason, on one line: the job's message shows it.
        print(f"hebi-runner: {one_line(str(exc))}", file=sys.stderr)
        return 2
    if result.status == "failed":
        print(f"hebi-runner: {result.error}", file=sys.stderr)
        return 1
    print(f"hebi-runner: {result.status}: {result.out_dir}")
    return 3 if result.status == "killed" else 0


if __name__ == "__main__":
    sys.exit(main())
