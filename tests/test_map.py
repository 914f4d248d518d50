"""map_groups and `imagezarr map`: a function per labeled group, a results table that lasts,
images out as files with a manifest, inline, in threads and on a dask cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import imagezarr
from imagezarr.mapping import MapError, load_function, map_groups
from imagezarr.testing import PSII_BY_PLANT, PSII_SCAN, make_psii_experiment, write_image

ANALYSIS = '''
import os
import numpy as np

def trait(group):
    """Mean per plant and night; plant A2 has no leaves on the second night."""
    calls = os.environ.get("CALLS")
    if calls:
        with open(calls, "a") as f:
            f.write(f"{group.barcode.values}/{group.night.values}\\n")
    if str(group.barcode.values) == "A2" and str(group.night.values) == "2020-06-01":
        raise ValueError("no leaves")
    pixels = group.image.values
    mask = pixels[0, 0] > pixels[0, 0].mean()
    return {"mean": float(pixels.mean()), "area": int(mask.sum()), "n": int(group.present.sum()),
            "mask": mask, "first": pixels[0, 0]}

def slow(group):
    import time
    time.sleep(0.4)
    return float(group.image.values.mean())
'''


@pytest.fixture
def psii(tmp_path):
    truth = make_psii_experiment(
        tmp_path / "img", plants=3, nights=2, steps=2, frames=2, shape=(12, 16), holes=1
    )
    saved = imagezarr.scan(tmp_path / "img", **PSII_SCAN).save(tmp_path / "psii.imagezarr.json")
    (tmp_path / "analysis.py").write_text(ANALYSIS)
    return saved, truth


def expected_means(saved: Path) -> dict[tuple[str, str], float]:
    ds = imagezarr.open_dataset(saved)
    out = {}
    for b in ds.barcode.values:
        for n in ds.night.values:
            sel = ds.sel(barcode=b, night=n)
            if sel.present.any():
                out[str(b), str(n)] = float(sel.image.values.mean())
    return out


def test_one_row_per_group_a_failing_group_does_not_stop_the_others(psii, tmp_path):
    saved, _ = psii
    table = map_groups(saved, f"{tmp_path / 'analysis.py'}:trait", by=("barcode", "night"))
    means = expected_means(saved)
    assert len(table) == len(means)
    assert list(table.columns[:2]) == ["barcode", "night"]
    failed = table[table.error != ""]
    assert failed[["barcode", "night"]].values.tolist() == [["A2", "2020-06-01"]]
    assert failed.error.iloc[0] == "ValueError: no leaves"
    worked = table[table.error == ""]
    ds = imagezarr.open_dataset(saved)
    for row in worked.itertuples():
        assert row.mean == pytest.approx(means[row.barcode, row.night])
        src = ds.sel(barcode=row.barcode, night=row.night).image.values[0, 0]
        np.testing.assert_array_equal(row.mask, src > src.mean())  # no out: arrays kept
    assert str(table.area.dtype) == "Int64"  # whole, beside the failed group's gap
    assert pd.isna(failed.area.iloc[0])


def test_a_rerun_runs_only_the_missing_and_failed_groups(psii, tmp_path, monkeypatch):
    saved, _ = psii
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("CALLS", str(calls))
    out = tmp_path / "res" / "traits.csv"
    func = f"{tmp_path / 'analysis.py'}:trait"
    first = map_groups(saved, func, by=("barcode", "night"), out=out)
    assert len(calls.read_text().splitlines()) == len(first)
    calls.write_text("")
    again = map_groups(saved, func, by=("barcode", "night"), out=out)
    assert calls.read_text().splitlines() == ["A2/2020-06-01"]  # the failed one, only
    assert again.attrs == {"ran": 1, "kept": len(first) - 1}
    pd.testing.assert_frame_equal(
        again.drop(columns=["mask", "first"]),
        first.drop(columns=["mask", "first"]),
        check_dtype=False,
    )
    on_disk = pd.read_csv(out, keep_default_na=False)
    assert len(on_disk) == len(first)
    calls.write_text("")
    map_groups(saved, func, by=("barcode", "night"), out=out, resume=False)
    assert len(calls.read_text().splitlines()) == len(first)
    # another function's results are not mixed in
    with pytest.raises(MapError, match="holds the results of 'trait', not of 'slow'"):
        map_groups(saved, f"{tmp_path / 'analysis.py'}:slow", by=("barcode", "night"), out=out)


def test_parquet_results_record_the_manifest_and_function(psii, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    saved, _ = psii
    out = tmp_path / "res" / "traits.parquet"
    table = map_groups(saved, f"{tmp_path / 'analysis.py'}:trait", by=("barcode", "night"), out=out)
    import json

    meta = json.loads(pq.read_schema(out).metadata[b"imagezarr"])
    assert meta["manifest"] == str(saved)
    assert meta["function"] == "trait"
    assert meta["by"] == ["barcode", "night"]
    back = pd.read_parquet(out)
    assert back.night.tolist() == table.night.tolist()


def test_masks_come_back_as_files_with_a_manifest_aligned_with_the_source(psii, tmp_path):
    saved, _ = psii
    out = tmp_path / "res" / "traits.csv"
    table = map_groups(saved, f"{tmp_path / 'analysis.py'}:trait", by=("barcode", "night"), out=out)
    images = tmp_path / "res" / "traits_images"
    ds = imagezarr.open_dataset(saved)
    for name in ("mask", "first"):
        back = imagezarr.open_dataset(images / f"{name}.imagezarr.json")
        assert back.image.dims == ("barcode", "night", "y", "x")
        for row in table[table.error == ""].itertuples():
            src = ds.sel(barcode=row.barcode, night=row.night).image.values[0, 0]
            want = (src > src.mean()).astype(np.uint8) * 255 if name == "mask" else src
            got = back.image.sel(barcode=row.barcode, night=row.night).values
            np.testing.assert_array_equal(got, want)
            assert (images / getattr(row, name)).is_file()
        # the failed group is a hole there too
        assert not bool(back.present.sel(barcode="A2", night="2020-06-01"))


def test_a_dask_cluster_with_process_workers_gives_the_same_table(psii, tmp_path):
    distributed = pytest.importorskip("distributed")
    saved, _ = psii
    func = f"{tmp_path / 'analysis.py'}:trait"
    inline = map_groups(saved, func, by=("barcode", "night"))
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = map_groups(saved, func, by=("barcode", "night"), client=client)
    threads = map_groups(saved, func, by=("barcode", "night"), workers=3)
    drop = ["mask", "first"]
    cols = [c for c in inline.columns if c not in drop]
    pd.testing.assert_frame_equal(remote[cols], inline[cols])
    pd.testing.assert_frame_equal(threads[cols], inline[cols])


def test_a_grouped_manifest_groups_by_its_group_field(tmp_path):
    make_psii_experiment(
        tmp_path / "img", plants=2, nights=2, steps=1, frames=2, shape=(6, 8), holes=0
    )
    m = imagezarr.scan(tmp_path / "img", **PSII_BY_PLANT)
    table = map_groups(m, lambda g: int(g.present.sum()), by=("barcode", "night"))
    assert table[["barcode", "night"]].values.tolist() == [
        ["A1", "2020-05-31"],
        ["A1", "2020-06-01"],
        ["A2", "2020-05-31"],
        ["A2", "2020-06-01"],
    ]
    assert table.result.tolist() == [2, 2, 2, 2]
    only = map_groups(m, lambda g: 1, by="night", group="A2")
    assert only.columns.tolist() == ["group", "night", "result", "error"]
    assert only.group.tolist() == ["A2", "A2"]


def test_clear_errors_for_a_bad_by_a_missing_function_and_an_output_in_the_source(psii, tmp_path):
    saved, _ = psii
    with pytest.raises(
        MapError, match=r"by: 'day' is not a dim of the dataset \(dims: barcode, night"
    ):
        map_groups(saved, lambda g: 1, by=("barcode", "day"))
    with pytest.raises(
        MapError, match=r"analysis\.py has no function 'trials' \(it defines: slow, trait\)"
    ):
        load_function(f"{tmp_path / 'analysis.py'}:trials")
    with pytest.raises(MapError, match="no such file"):
        load_function(f"{tmp_path / 'nope.py'}:f")
    with pytest.raises(MapError, match=r"name a function as FILE\.py:NAME"):
        load_function("analysis")
    with pytest.raises(MapError, match=r"refusing to write .* inside the source folder"):
        map_groups(saved, lambda g: 1, by="barcode", out=tmp_path / "img" / "t.csv")
    with pytest.raises(MapError, match=r"out must end in \.csv or \.parquet"):
        map_groups(saved, lambda g: 1, by="barcode", out=tmp_path / "t.xlsx")


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imagezarr", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_cli_exit_codes_and_summary(psii, tmp_path):
    saved, _ = psii
    done = _cli(
        "map",
        str(saved),
        "analysis.py:trait",
        "--by",
        "barcode,night",
        "-o",
        "out/t.csv",
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "failed barcode=A2  night=2020-06-01: ValueError: no leaves" in done.stdout
    n = len(expected_means(saved))
    assert f"FAILED: 1 of {n} groups failed ({n - 1} worked); results in out/t.csv" in done.stdout
    ok = _cli(
        "map", str(saved), "analysis.py:slow", "--by", "barcode", "-o", "out/s.csv", cwd=tmp_path
    )
    assert ok.returncode == 0, ok.stderr
    assert "ok: 3 groups, results in out/s.csv" in ok.stdout
    rerun = _cli(
        "map", str(saved), "analysis.py:slow", "--by", "barcode", "-o", "out/s.csv", cwd=tmp_path
    )
    assert "ok: 3 groups (3 kept from the earlier run, 0 run now)" in rerun.stdout
    bad = _cli(
        "map", str(saved), "analysis.py:nothing", "--by", "barcode", "-o", "out/n.csv", cwd=tmp_path
    )
    assert bad.returncode == 2
    assert "has no function 'nothing'" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "out" / "n.csv").exists()
    dim = _cli(
        "map", str(saved), "analysis.py:slow", "--by", "plant", "-o", "out/p.csv", cwd=tmp_path
    )
    assert dim.returncode == 2
    assert "by: 'plant' is not a dim" in dim.stderr


@pytest.mark.skipif(os.name == "nt", reason="kill -9 is POSIX")
def test_a_killed_run_leaves_a_valid_results_file_and_the_rerun_finishes_it(psii, tmp_path):
    saved, _ = psii
    args = ("map", str(saved), "analysis.py:slow", "--by", "barcode,night", "-o", "out/s.csv", "-q")
    proc = subprocess.Popen(
        [sys.executable, "-m", "imagezarr", *args],
        cwd=tmp_path,
        env={**os.environ, "IMAGEZARR_MAP_SAVE_EVERY": "0"},
    )
    out = tmp_path / "out" / "s.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not out.exists() or len(pd.read_csv(out)) < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = pd.read_csv(out, keep_default_na=False)  # valid: the old or the new file
    n = len(expected_means(saved))
    assert 2 <= len(partial) < n
    rest = _cli(*args, cwd=tmp_path)
    assert rest.returncode == 0, rest.stderr
    final = pd.read_csv(out, keep_default_na=False)
    assert len(final) == n
    assert (final.error == "").all()


def test_a_corrupt_file_fails_only_its_group_when_groups_are_read_together(psii, tmp_path):
    saved, _ = psii
    m = imagezarr.load_manifest(saved)
    bad = Path(m.root) / m.files.paths[5]
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * (bad.stat().st_size - 8))  # same size
    ds = imagezarr.open_dataset(m, check="none")
    table = map_groups(
        m, lambda g: float(g.image.values.mean()), by=("barcode", "night"), check="none"
    )
    failed = table[table.error != ""]
    assert len(failed) == 1
    assert "ChunkDecodeError" in failed.error.iloc[0]
    assert m.files.paths[5] in failed.error.iloc[0]  # the error names the file
    worked = table[table.error == ""]
    for row in worked.itertuples():
        sel = ds.sel(barcode=row.barcode, night=row.night)
        assert row.result == pytest.approx(float(sel.image.values.mean()))


def test_long_labels_still_make_file_names_a_file_system_takes(tmp_path):
    plant = "P" * 248  # a legal name (253 bytes); with the hash added it would not be
    for n in (1, 2):
        write_image(tmp_path / "img" / f"{plant}{n}.png", np.full((4, 6), 7, np.uint8))
    m = imagezarr.scan(tmp_path / "img", pattern=r"(?P<plant>P+\d)\.png")
    out = tmp_path / "res" / "t.csv"
    by = "plant"
    table = map_groups(m, lambda g: {"mask": g.image.values > 0}, by=by, out=out)
    assert (table.error == "").all()
    files = sorted((tmp_path / "res" / "t_images" / "mask").glob("*.png"))
    assert len(files) == 2
    assert all(len(f.name) < 140 for f in files)
    back = imagezarr.open_dataset(tmp_path / "res" / "t_images" / "mask.imagezarr.json")
    assert [str(v) for v in back.plant.values] == [f"{plant}1", f"{plant}2"]  # whole labels
