"""A run that stops at a chosen moment and waits to be killed (SIGKILL) by tests/test_kill.py.

    python tests/killable_run.py PHASE CONFIG MARKER [--cli ...]

PHASE: validate (hashing the inputs) | account (tallies merged, nothing written) | write (two
partition files of the new version written) | swap (new version complete, not yet published) |
published (published, run record not yet closed) | prefect (the CLI through Prefect, in the pass).
MARKER is created when the run reaches the phase.
"""
import sys
import time
from pathlib import Path

phase, config, marker = sys.argv[1:4]


def stop_here():
    Path(marker).write_text(phase)
    time.sleep(600)


def pause_before(module, name, after_calls=0):
    real, calls = getattr(module, name), []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) > after_calls:
            stop_here()
        return real(*args, **kwargs)
    setattr(module, name, wrapper)


from gep import engine, pipeline, runs, store  # noqa: E402
from gep.cli import main  # noqa: E402
from gep.config import load_run_config  # noqa: E402

if phase == "validate":
    pause_before(pipeline, "_lineage")
elif phase == "account":
    pause_before(engine, "finish")
elif phase == "write":
    pause_before(store, "write_parquet", after_calls=2)
elif phase == "swap":
    pause_before(store, "_symlink_atomically")
elif phase == "published":
    real_swap = store.OutputStore._swap

    def swap_then_stop(self, run_id):
        real_swap(self, run_id)
        stop_here()
    store.OutputStore._swap = swap_then_stop
if phase == "prefect":
    pause_before(engine, "finish")
    sys.exit(main(["run", "--config", config, "--force"]))
runs.run(load_run_config(config), force=True)
