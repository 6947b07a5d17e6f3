#!/usr/bin/env python3
"""A stand-in for ``savu DATA PROCESS_LIST OUT -f FOLDER`` in the job tests: it behaves as the dataset
file tells it (its ``fake_savu`` attribute, JSON: {"seconds": s, "exit": code, "steps": n, "stderr": text,
"user_log": text}), writes Savu's ``run_log/user.log`` with ``NN% complete`` lines, records the loader
preview it was given, and writes an output file."""
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    data, process_list, out = sys.argv[1], sys.argv[2], sys.argv[3]
    folder = sys.argv[sys.argv.index("-f") + 1] if "-f" in sys.argv else time.strftime("%Y%m%d%H%M%S") + "_run"
    run = Path(out) / folder
    (run / "run_log").mkdir(parents=True, exist_ok=True)
    log = open(run / "run_log" / "user.log", "a", buffering=1)

    def say(message: str) -> None:
        log.write(time.strftime("%Y-%m-%d %H:%M:%S,000") + " - " + message + "\n")

    say("User Log Started")
    import h5py  # after the log exists, as before: a test cancels as soon as a job runs and reads its log
    with h5py.File(data, "r") as scan:
        behaviour = json.loads(scan.attrs.get("fake_savu", "{}"))
    try:
        from hebi_common.savu.process_list import read_process_list
        loader = read_process_list(process_list).plugins[0]
        (run / "preview.json").write_text(json.dumps(loader.params.get("preview")))
    except Exception as error:  # noqa: BLE001 - recorded for the test to see
        (run / "preview.json").write_text(json.dumps({"error": str(error)}))
    # Where the scheduler put it: GridEngine sets QUEUE, Slurm SLURM_JOB_PARTITION, a Kubernetes Job's
    # Pod gets HEBI_JOB_QUEUE and HEBI_JOB_CORES from hebi.
    (run / "placement.json").write_text(json.dumps({
        "queue": os.environ.get("QUEUE") or os.environ.get("SLURM_JOB_PARTITION") or os.environ.get("HEBI_JOB_QUEUE")
        or "local",
        "mode": os.environ.get("HEBI_JOB_MODE"),
        "cores": int(os.environ.get("NSLOTS") or os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("HEBI_JOB_CORES")
                     or 1)}))
    print(f"fake savu: {data} {process_list} {out} {folder}", flush=True)
    steps = int(behaviour.get("steps", 4))
    seconds = float(behaviour.get("seconds", 1))
    say("*Running the FakeFilter plugin*")
    for step in range(1, steps + 1):
        time.sleep(seconds / steps)
        say(f"FakeFilter - {int(100 * step / steps)}% complete")
    code = int(behaviour.get("exit", 0))
    if code:
        print(behaviour.get("stderr", "fake savu: failing as asked"), file=sys.stderr, flush=True)
        say(behaviour.get("user_log", f"ERROR: failing with exit code {code} as asked"))
        return code
    (run / "result_processed.nxs").write_bytes(b"fake result\n")
    say("* Processing Complete in %.2f seconds *" % seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
