"""Symbolic links in the measurement folder: a loop or a dangling link is skipped
by the listing and answered with 400 by every route that takes a file name (not
500); a link to a file in the folder works."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.files.helpers import API, write_measurement

METADATA = {"version": "1", "profile": "p", "parameters": {}}


def requests(client: TestClient, name: str) -> dict[str, int]:
    embed = [("files", ("a.txt", b"a", "text/plain"))]
    return {
        "download": client.get(f"{API}/files/{name}").status_code,
        "delete": client.delete(f"{API}/files/{name}").status_code,
        "analyze": client.get(f"{API}/files/analyze/{name}").status_code,
        "meta": client.get(f"{API}/files/analyze/meta/{name}").status_code,
        "pre_meta": client.post(f"{API}/files/pre_meta/{name}", json=METADATA).status_code,
        "post_meta": client.post(f"{API}/files/post_meta/{name}", json=METADATA).status_code,
        "embed": client.post(f"{API}/files/{name}/embedded", files=embed).status_code,
        "embedded": client.get(f"{API}/files/{name}/embedded/x").status_code,
        "delete_embedded": client.delete(f"{API}/files/{name}/embedded/x").status_code,
    }


def test_link_loops_give_400_and_are_not_listed(client: TestClient, measurements: Path) -> None:
    write_measurement(measurements / "real.hdf5", frames=10)
    (measurements / "self.hdf5").symlink_to("self.hdf5")
    (measurements / "a.hdf5").symlink_to("b.hdf5")
    (measurements / "b.hdf5").symlink_to("a.hdf5")
    (measurements / "dangling.hdf5").symlink_to("nowhere.hdf5")
    listing = client.get(f"{API}/files")
    assert listing.status_code == 200
    assert [f["name"] for f in listing.json()["files"]] == ["real.hdf5"]
    for name in ("self.hdf5", "a.hdf5"):
        assert set(requests(client, name).values()) == {400}, name
    assert set(requests(client, "dangling.hdf5").values()) == {404}
    assert client.get(f"{API}/files/real.hdf5").status_code == 200


def test_link_to_a_file_in_the_folder_works(client: TestClient, measurements: Path) -> None:
    write_measurement(measurements / "real.hdf5", frames=10)
    (measurements / "alias.hdf5").symlink_to("real.hdf5")
    names = {f["name"] for f in client.get(f"{API}/files").json()["files"]}
    assert names == {"real.hdf5", "alias.hdf5"}
    assert client.get(f"{API}/files/analyze/meta/alias.hdf5").status_code == 200
