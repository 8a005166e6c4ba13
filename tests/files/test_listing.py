"""GET /files on large folders: each file is checked once per version, the folder
is scanned again only when it changes, and concurrent requests share listings."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from icoapi.files.listing import SharedRound
from tests.files.helpers import API, write_measurement
from tests.support import AppServices

COUNT = 2000  # bench/bench_files.py measures 10,000


def test_large_folders_are_listed_and_each_file_checked_once(
    client: TestClient, measurements: Path, tmp_path: Path
) -> None:
    template = write_measurement(tmp_path / "template.hdf5", frames=10)
    for number in range(COUNT):
        shutil.copyfile(template, measurements / f"m {number:05d}.hdf5")
    service = AppServices(client).files
    first = client.get(f"{API}/files").json()["files"]
    assert len(first) == COUNT
    assert all(entry["invalid"] is None for entry in first)
    assert service.verdicts.checks == COUNT
    assert client.get(f"{API}/files").json()["files"] == first
    assert service.verdicts.checks == COUNT  # nothing checked again

    (measurements / "m 00007.hdf5").unlink()
    changed = write_measurement(measurements / "m 00008.hdf5.tmp", frames=20)
    os.replace(changed, measurements / "m 00008.hdf5")
    names = [entry["name"] for entry in client.get(f"{API}/files").json()["files"]]
    assert len(names) == COUNT - 1 and "m 00007.hdf5" not in names
    assert service.verdicts.checks == COUNT + 1  # only the changed file


def test_a_file_growing_in_place_is_listed_with_its_new_size(
    client: TestClient, measurements: Path
) -> None:
    path = write_measurement(measurements / "m.hdf5", frames=10)
    assert client.get(f"{API}/files").json()["files"][0]["size"] == path.stat().st_size
    with path.open("ab") as file:  # the folder's mtime stays, the file's changes
        file.write(b"\0" * 4096)
    assert client.get(f"{API}/files").json()["files"][0]["size"] == path.stat().st_size


def test_concurrent_callers_share_rounds_that_start_after_them() -> None:
    runs: list[int] = []
    release = asyncio.Event()

    async def compute() -> int:
        runs.append(len(runs))
        await release.wait()
        return len(runs)

    async def scenario() -> list[int]:
        rounds = SharedRound(compute)
        first = asyncio.create_task(rounds.get())
        await asyncio.sleep(0)  # the first round runs
        later = [asyncio.create_task(rounds.get()) for _ in range(10)]
        await asyncio.sleep(0)
        release.set()
        return [await first] + [await task for task in later]

    results = asyncio.run(scenario())
    assert results == [1] + [2] * 10  # the 10 late callers share one later round
    assert runs == [0, 1]
