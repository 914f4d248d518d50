"""Stage 8: the command line, through its real entry point."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

import imagezarr
import imagezarr.testing
from imagezarr.cli import main
from imagezarr.testing import PSII_PATTERN, make_psii_experiment
from imagezarr.testing import PSII_SCAN as PSII


def scan_args(images, out):
    return [
        "scan",
        str(images),
        "--pattern",
        PSII_PATTERN,
        "--type",
        "timestamp=%Y%m%dT%H%M%S",
        "--type",
        "frame=int",
        "--dims",
        "barcode,night,param,frame",
        "-o",
        str(out),
    ]


def test_scan_writes_manifest_and_prints_summary(psii, tmp_path, capsys):
    images, truth = psii
    out = tmp_path / "psii.imagezarr.json"
    assert main(scan_args(images, out)) == 0
    text = capsys.readouterr().out
    assert f"{len(truth)} files" in text
    assert "image (12, 2, 4, 3, 12, 16) uint8 png" in text
    assert "48 hole(s) of 288" in text
    assert "barcode [12]: A1, A2, A3, A4, ..." in text
    assert "timestamp (barcode, night, param) datetime" in text
    assert json.loads(out.read_text())["root"] == "images"


def test_info_prints_the_same_summary(psii, tmp_path, capsys):
    images, _ = psii
    out = tmp_path / "psii.imagezarr.json"
    main(scan_args(images, out))
    scanned = capsys.readouterr().out
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    # same tree below the title line
    assert scanned.split("\n", 2)[2] == info.split("\n", 2)[2]


def test_verify_ok_then_reports_changed_and_missing(psii, tmp_path, capsys):
    images, truth = psii
    out = tmp_path / "psii.imagezarr.json"
    main(scan_args(images, out))
    assert main(["verify", str(out), "--decode"]) == 0
    assert f"ok: {len(truth)} files checked, {len(truth)} decoded" in capsys.readouterr().out
    names = sorted(truth)
    (images / names[0]).unlink()
    (images / names[1]).write_bytes(b"not an image any more")
    assert main(["verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert f"missing      {names[0]}: file not found" in text
    assert f"changed      {names[1]}: size" in text
    assert "FAILED" in text
    assert "1 changed, 1 missing" in text


def test_verify_decode_finds_corrupt_file_with_original_stat(psii, tmp_path, capsys):
    images, truth = psii
    out = tmp_path / "psii.imagezarr.json"
    main(scan_args(images, out))
    target = images / sorted(truth)[3]
    st = target.stat()
    target.write_bytes(target.read_bytes()[:40] + b"\0" * (st.st_size - 40))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert main(["verify", str(out)]) == 0  # stat alone cannot see it
    capsys.readouterr()
    assert main(["verify", str(out), "--decode"]) == 1
    text = capsys.readouterr().out
    assert f"undecodable  {sorted(truth)[3]}: " in text
    assert "cannot decode as PNG" in text


def test_library_errors_exit_1_with_one_line(psii, tmp_path, capsys):
    images, _ = psii
    code = main(
        [
            "scan",
            str(images),
            "--pattern",
            r"(?P<x1>\d+)\.png",
            "-o",
            str(tmp_path / "x.imagezarr.json"),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("imagezarr: error: 240 of 240 files match the glob but their file name")
    assert err.count("\n") == 1
    assert "Traceback" not in err


def test_verbose_shows_the_traceback(tmp_path, capsys):
    assert main(["-v", "info", str(tmp_path / "missing.imagezarr.json")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "cannot read manifest" in err


def test_bad_type_option_is_a_usage_error(psii, tmp_path, capsys):
    images, _ = psii
    code = main(["scan", str(images), "--type", "frame", "-o", str(tmp_path / "x.json")])
    assert code == 2
    assert "--type takes FIELD=TYPE" in capsys.readouterr().err


def test_demo_runs_end_to_end_as_a_console_script(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "imagezarr")
    if not os.path.exists(exe):
        pytest.skip("the imagezarr console script is not installed in this environment")
    where = tmp_path / "my demo ü"  # spaces and umlauts must survive the pasted commands
    run = subprocess.run(
        [exe, "demo", str(where), "--plants", "3", "--nights", "2"],
        capture_output=True,  # piped: nothing may wrap the commands
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "mean leaf intensity per plant and protocol step" in run.stdout
    assert "files checked: ok" in run.stdout
    assert (where / "psii.imagezarr.json").exists()
    steps = run.stdout.split("next steps (paste them as they are):\n", 1)[1].splitlines()
    assert len(steps) == 3
    bare = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    bare["PATH"] = "/usr/bin:/bin"  # no venv on PATH: the commands must name it themselves
    for line in steps:
        pasted = subprocess.run(
            line.strip(), shell=True, capture_output=True, text=True, env=bare, check=False
        )
        assert pasted.returncode == 0, (line, pasted.stderr)
    assert (
        "<xarray.Dataset>"
        in subprocess.run(
            steps[0].strip(), shell=True, capture_output=True, text=True, env=bare, check=False
        ).stdout
    )


def test_manifest_path_in_summary(psii, tmp_path, capsys):
    images, _ = psii
    out = tmp_path / "psii.imagezarr.json"
    main(scan_args(images, out))
    assert str(out) in capsys.readouterr().out
    assert PSII["dims"][0] == "barcode"


def test_python_dash_m_runs_the_cli():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "imagezarr", "--help"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "scan" in out.stdout


def test_export_and_verify_print_no_log_lines(psii, tmp_path, capsys):
    images, _ = psii
    out = tmp_path / "psii.imagezarr.json"
    assert main([*scan_args(images, out), "-q"]) == 0
    capsys.readouterr()
    assert main(["verify", str(out), "-q"]) == 0
    assert main(["export", str(out), "-f", "kerchunk", "-o", str(tmp_path / "r.json"), "-q"]) == 0
    captured = capsys.readouterr()
    assert "INFO" not in captured.err + captured.out
    assert "FusedCodecPipeline" not in captured.err + captured.out


def test_demo_of_a_tiny_experiment(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "tiny demo"), "--plants", "1", "--nights", "1"]) == 0
    assert "files checked: ok" in capsys.readouterr().out


# -- start-up: what each command imports --------------------------------------------------------

HEAVY = ("zarr", "xarray", "dask", "distributed", "aiohttp", "PIL", "pandas", "numcodecs")


def _imported_by(argv: list[str]) -> set[str]:
    """The heavy top-level packages a fresh interpreter has imported after running ``argv``."""
    code = (
        "import sys\n"
        "from imagezarr.cli import main\n"
        f"code = main({argv!r})\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(ast.literal_eval(run.stdout.strip().splitlines()[-1]))


def test_version_and_help_import_nothing_heavy():
    assert _imported_by(["--version"]) == set()
    assert _imported_by(["--help"]) == set()


def test_info_and_update_read_the_document_without_zarr(tmp_path):
    """``info`` and ``update`` never build a codec or a store: no zarr, xarray, dask."""
    m = imagezarr.testing.small_manifest(tmp_path / "images").save(tmp_path / "m.imagezarr.json")
    assert _imported_by(["info", str(m)]) == set()
    assert not _imported_by(["update", str(m), "--dry-run", "-q"]) & {"zarr", "xarray", "dask"}


def test_the_command_table_matches_the_commands():
    """``--help`` lists commands from a table, without importing them: it must not drift."""
    from imagezarr.cli import COMMANDS, cli

    ctx = click.Context(cli)
    for name, (_, short) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert command.get_short_help_str(limit=1000) == short, name
    assert cli.get_command(ctx, "nope") is None
    assert main(["nope"]) == 2


def test_cli_errors_and_notes_name_flags_not_python_keywords(psii, tmp_path, capsys):
    images, _ = psii
    assert main(scan_args(images, images / "inside.imagezarr.json")) == 1
    err = capsys.readouterr().err
    assert "pass --force" in err
    assert "force=True" not in err
    args = [a for a in scan_args(images, tmp_path / "m.imagezarr.json") if a != "--dims"]
    args.remove("barcode,night,param,frame")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "pass --dims to choose yourself" in out
    assert "dims (--dims)" not in out


@pytest.mark.skipif(os.name == "nt", reason="SIGINT to a child process is POSIX; Windows: CTRL_C")
# 0.0: before Python has started (the OS ends it); then inside imports, probes and checksums
@pytest.mark.parametrize("after", [0.0, 0.1, 0.2, 0.4])
def test_ctrl_c_at_any_moment_ends_with_one_line_and_130(tmp_path, after):
    images = tmp_path / "images"
    make_psii_experiment(images, plants=12, nights=4, steps=4, frames=3, shape=(4, 4))
    script = Path(sys.executable).with_name("imagezarr")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "imagezarr"]
    loop = ["scan", str(images), "--checksum", "-o", str(tmp_path / "m.imagezarr.json")]
    proc = subprocess.Popen([*cmd, *loop], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip(f"the scan finished in under {after} s: nothing left to interrupt")
    text = err.decode()
    if proc.returncode == -signal.SIGINT:  # before Python set up its handler: the OS ended it
        assert text == ""  # and the shell reports 130 itself
        return
    assert proc.returncode == 130, text
    assert "Traceback" not in text
    assert text.strip() == "imagezarr: interrupted"


def test_verify_of_a_manifest_moved_without_its_images_names_the_root(psii, tmp_path, capsys):
    images, _ = psii
    saved = tmp_path / "psii.imagezarr.json"
    assert main(scan_args(images, saved)) == 0
    moved = tmp_path / "elsewhere" / "deeper" / "psii.imagezarr.json"
    moved.parent.mkdir(parents=True)
    saved.rename(moved)  # the root is stored relative to the manifest: now it points nowhere
    capsys.readouterr()
    assert main(["verify", "-q", str(moved)]) == 1
    out = capsys.readouterr().out
    assert "does not exist: was the manifest moved or copied without its images?" in out
    assert "--root FOLDER" in out
    assert "accepts the changes" not in out  # update would record every file as removed
    assert "file not found" not in out  # not 288 lines saying the same
    assert main(["verify", "-q", str(moved), "--root", str(images)]) == 0
    report = imagezarr.verify(moved)
    assert report.root_gone
    assert "root=... (--root FOLDER)" in report.advice
