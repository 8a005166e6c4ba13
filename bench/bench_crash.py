"""Crash benchmark (``make bench``): SIGKILL a measurement-file writer many times.

Each round starts a writer process that records single-channel frames at 10x the
default frame rate (the simulator's rate multiplier 10: 31.7 k frames/s, 95 k
rows/s) with the service's flush interval and a journal checkpoint every 0.5 s
(``--checkpoint-interval``; the service's default is 5 s, a short one puts
kills among checkpoints), kills it with SIGKILL at a random moment 0.3–4 s in
(some kills land during an HDF5 flush or a checkpoint), for every 4th kill
destroys the file's HDF5 index afterwards (``--damage-every``: the worst a kill
in the middle of an index update can do), then recovers the file as the service
does at startup (:mod:`icoapi.hdf5.recovery`) and checks it with PyTables and
icotronic's ``Storage``.

Prints: kills survived (file readable, frames complete and in order, marked
``interrupted``, holding every row handed over at least 1 s before the kill), and
the seconds of data handed to the writer before the kill but missing from the
file (median/max). Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.hdf5.crash import DEFAULT_FRAME_RATE, KillResult, kill_once  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--multiplier", type=float, default=10.0)
    parser.add_argument("--flush-interval", type=float, default=1.0)
    parser.add_argument("--parallel", type=int, default=2, help="writers killed at once")
    parser.add_argument("--checkpoint-interval", type=float, default=0.5)
    parser.add_argument("--damage-every", type=int, default=4, help="0: never")
    args = parser.parse_args()
    rate = DEFAULT_FRAME_RATE * args.multiplier
    print(
        f"icoapi crash benchmark: {args.kills} SIGKILLs of a writer at "
        f"{rate * 3 / 1000:.1f} k samples/s (x{args.multiplier:g}), flush every "
        f"{args.flush_interval:g} s, journal checkpoint every {args.checkpoint_interval:g} s"
    )
    with tempfile.TemporaryDirectory(prefix="icoapi-crash-") as folder:

        def round_(seed: int) -> KillResult:
            directory = Path(folder) / str(seed)
            directory.mkdir()
            return kill_once(
                directory,
                rate,
                args.flush_interval,
                seed,
                checkpoint_interval=args.checkpoint_interval,
                damage_index=bool(args.damage_every) and seed % args.damage_every == 0,
                longest=4.0,
            )

        with ThreadPoolExecutor(args.parallel) as pool:
            results = list(pool.map(round_, range(args.kills)))
    survived = [
        r for r in results if r.readable and r.problem is None and r.rows >= r.expected_rows
    ]
    missing = sorted(r.missing_seconds for r in results if r.readable)
    handed = sorted(r.missing_handed_seconds for r in results if r.readable)
    recovered = sum(1 for r in results if r.recovered)
    rebuilt = sum(1 for r in results if r.rebuilt)
    print(
        f"  kills survived: {len(survived)}/{len(results)} (completed from the journal: "
        f"{recovered}, of them rebuilt from chunks and journal: {rebuilt}, of which "
        f"{sum(1 for r in results if r.rebuilt and r.damaged)} had the index destroyed)"
    )
    if missing:
        print(
            f"  seconds of data missing after a kill: median {statistics.median(missing):.3f} s, "
            f"max {max(missing):.3f} s (data produced by the clock up to the kill)"
        )
        print(
            f"  of that, handed to the writer but lost: median "
            f"{statistics.median(handed):.3f} s, max {max(handed):.3f} s (the rest was "
            "still in the 0.1 s hand-over batch)"
        )
    for result in results:
        if result not in survived:
            print(f"  failed: {result}")


if __name__ == "__main__":
    main()
