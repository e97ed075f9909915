"""`tinygen dataset pack` (issue 15, item 3): recorded windows -> the training .npz; the
folder format that `tinygen capture` writes. Data: real BasicMotions windows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_user_error, run_tinygen

from tinygen.dataset_pack import INDEX, WindowMeta, write_window

META = WindowMeta(board="qemu-m4", sensor="imu", rate_hz=10.0,
                  channels=("dim_0", "dim_1", "dim_2", "dim_3", "dim_4", "dim_5"),
                  units={"dim_0": "as recorded"})


@pytest.fixture()
def recorded(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray, list[str]]:
    d = np.load(REPO / "examples" / "basicmotions" / "data" / "basicmotions.npz")
    labels = [str(s) for s in d["label_names"]]
    folder = tmp_path / "data"
    for x, y in zip(d["x_train"], d["y_train"]):
        write_window(folder, labels[int(y)], x, META, "2026-11-28T00:00:00Z")
    return folder, d["x_train"], d["y_train"], labels


def test_pack_gives_back_the_recordings(recorded: tuple[Path, np.ndarray, np.ndarray,
                                                         list[str]], tmp_path: Path) -> None:
    folder, x, y, labels = recorded
    out = tmp_path / "train.npz"
    proc = run_tinygen("dataset", "pack", str(folder), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["windows"] == 40 and summary["samples_per_window"] == 100
    packed = np.load(out)
    names = [str(s) for s in packed["labels"]]
    assert names == sorted(labels)
    # same windows (the float32 values round-trip exactly through the CSV files)
    order = np.lexsort((np.arange(len(y)),))
    got = {(names[int(k)], w.tobytes()) for w, k in zip(packed["x"], packed["y"])}
    want = {(labels[int(k)], w.astype(np.float32).tobytes()) for w, k in zip(x[order], y)}
    assert got == want


def test_split_is_stratified_and_seeded(recorded: tuple[Path, np.ndarray, np.ndarray,
                                                         list[str]], tmp_path: Path) -> None:
    folder = recorded[0]
    outs = []
    for n in (1, 2):
        out = tmp_path / f"s{n}.npz"
        proc = run_tinygen("dataset", "pack", str(folder), "--out", str(out), "--split", "0.2",
                           "--seed", "3")
        assert proc.returncode == 0, proc.stderr
        assert "Badminton" in proc.stdout and "train" in proc.stdout
        outs.append(np.load(out))
    a, b = outs
    assert np.array_equal(a["x_test"], b["x_test"])  # seeded: the same split twice
    assert np.bincount(a["y_test"]).tolist() == [2, 2, 2, 2]  # 20 % of 10 per label
    assert len(a["x"]) == 32


def test_resume_appends_without_touching_earlier_files(
        recorded: tuple[Path, np.ndarray, np.ndarray, list[str]]) -> None:
    folder = recorded[0]
    before = {p: p.read_bytes() for p in folder.rglob("*.csv") if p.name != INDEX}
    new = write_window(folder, "Running", np.ones((100, 6)), META, "later")
    assert new.name == "Running.10.csv"
    for p, data in before.items():
        assert p.read_bytes() == data


@pytest.mark.parametrize("damage,needle", [
    ("truncate", "windows differ in length"),
    ("rate", "mixed rate_hz"),
    ("columns", "are not the index's channels"),
])
def test_bad_recordings_are_refused(recorded: tuple[Path, np.ndarray, np.ndarray, list[str]],
                                    tmp_path: Path, damage: str, needle: str) -> None:
    folder = recorded[0]
    victim = folder / "Walking" / "Walking.3.csv"
    if damage == "truncate":
        victim.write_text("\n".join(victim.read_text().splitlines()[:60]) + "\n")
    elif damage == "rate":
        write_window(folder, "Walking", np.ones((100, 6)),
                     WindowMeta(**{**META.__dict__, "rate_hz": 50.0}), "t")
    else:
        lines = victim.read_text().splitlines()
        lines[0] = "dim_1,dim_0,dim_2,dim_3,dim_4,dim_5"
        victim.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o" / "x.npz"
    proc = run_tinygen("dataset", "pack", str(folder), "--out", str(out))
    assert_user_error(proc, needle)
    assert not out.exists()
