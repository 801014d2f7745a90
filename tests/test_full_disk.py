"""A full disk while writing: one message naming the output, exit code 1, nothing left.

The disk is made "full" for a child process with a file-size limit (RLIMIT_FSIZE, with
SIGXFSZ ignored: a write past it fails with EFBIG, "File too large"), which needs no
privileges. Before, HDF5 outputs crashed the interpreter (segmentation fault) and left their
temporary files, and a checkpoint failed with torch's "unexpected pos" traceback and left
a run folder that neither a new run nor --resume could use.
"""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE (POSIX)"
)


def run_with_file_limit(args: list[str], limit: int, cwd: Path) -> subprocess.CompletedProcess:
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "innpar_freia", *args],
        cwd=cwd,
        preexec_fn=limit_files,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_error(result: subprocess.CompletedProcess, output: str) -> None:
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: cannot write {output}: File too large"], result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def test_a_window_file_on_a_full_disk(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = run_with_file_limit(
        ["data", "synth", "--out", "out/s.h5", "--subjects", "4"], 300_000, tmp_path
    )
    assert_one_error(result, "out/s.h5")
    assert list(out.iterdir()) == []  # no hidden temporary file either


def test_a_checkpoint_on_a_full_disk(synth_file: Path, tmp_path: Path) -> None:
    args = ["train", "--data", str(synth_file), "--preset", "tiny", "--epochs", "1"]
    result = run_with_file_limit([*args, "--out", "runs/a"], 60_000, tmp_path)
    assert_one_error(result, "runs/a/checkpoints/last.pt")  # the first checkpoint written
    # The folder is gone: the same command can run again once there is room.
    assert not (tmp_path / "runs").exists()
    again = run_with_file_limit([*args, "--out", "runs/a"], 2**30, tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]


def test_reports_and_predictions_on_a_full_disk(tiny_run: Path, synth_file: Path, tmp_path: Path):
    checkpoint = str(tiny_run / "checkpoints" / "best.pt")
    result = run_with_file_limit(
        ["reconstruct", "--checkpoint", checkpoint, str(synth_file), "--out", "r/r.h5"],
        100_000,
        tmp_path,
    )
    assert_one_error(result, "r/r.h5")  # not the hidden file it was staged in
    assert not (tmp_path / "r").exists()
    args = ["eval", "--checkpoint", checkpoint, "--data", str(synth_file), "--out", "ev"]
    result = run_with_file_limit([*args, "--save-predictions", "p/p.h5"], 100_000, tmp_path)
    assert result.returncode == 1 and "Error: cannot write " in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert ".staged" not in result.stderr
    assert not (tmp_path / "ev").exists() and not (tmp_path / "p").exists()


def recordings(folder: Path, n: int) -> list[Path]:
    """``n`` PPG recordings of 200 s at 125 Hz as .npy files (200 KB each: 50 KB as WFDB)."""
    import numpy as np

    from tests.helpers import pulse_recording

    folder.mkdir()
    for i in range(n):
        np.save(folder / f"r{i}.npy", pulse_recording(200, seed=i)[0])
    return sorted(folder.iterdir())


@pytest.mark.parametrize(
    ("out", "written", "why"),
    [
        # np.save: through write(), which keeps the cause.
        ("o/a.npy", "o/a.npy", "File too large"),
        # wfdb.wrsamp writes with numpy's tofile, which reported only "75000 requested and
        # 38384 written", naming neither the output nor the cause.
        ("o/a.hea", "o/a.hea, o/a.dat", "the disk took only part of it"),
    ],
)
def test_a_recording_on_a_full_disk(tiny_run: Path, tmp_path: Path, out, written, why):
    (ppg,) = recordings(tmp_path / "in", 1)
    checkpoint = str(tiny_run / "checkpoints" / "best.pt")
    args = ["reconstruct", "--checkpoint", checkpoint, str(ppg), "--fs", "125", "--out", out]
    result = run_with_file_limit(args, 30_000, tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: cannot write {written}: {why}")
    assert "Traceback" not in result.stderr and "requested and" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_a_folder_run_stops_on_a_full_disk_in_every_format(tiny_run: Path, tmp_path: Path):
    """With WFDB outputs a full disk failed each recording in turn ("75000 requested and
    10224 written"), and the run advised --include, as if they were not recordings."""
    recordings(tmp_path / "in", 3)
    checkpoint = str(tiny_run / "checkpoints" / "best.pt")
    args = ["reconstruct", "--checkpoint", checkpoint, "in", "--fs", "125", "--out", "abp"]
    result = run_with_file_limit([*args, "--format", "wfdb"], 30_000, tmp_path)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "[2/3]" not in result.stdout  # stopped at the first
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: cannot write abp/r0.hea, abp/r0.dat: the disk took only part of it (it is "
        "full, or a quota or file size limit)"
    ]
    # A file too large for the disk (here EFBIG, which a shorter recording may not meet) is
    # one recording's failure: the run goes on, and does not blame the inputs.
    result = run_with_file_limit([*args, "--format", "npy", "--force"], 30_000, tmp_path)
    assert result.returncode == 1 and "[3/3] r2: not reconstructed" in result.stdout
    assert "cannot write abp/r2.npy: File too large" in result.stderr
    assert "--include" not in result.stderr and "requested and" not in result.stderr


def test_an_unwritable_output_folder_is_found_before_the_work(
    tiny_run: Path, synth_file: Path, tmp_path: Path, monkeypatch
):
    """A read-only folder for --save-predictions was found after the whole evaluation, and
    left an empty figures/ behind. (Simulated: this test may run as root, for whom every
    folder is writable; os.access is what a read-only file system answers to.)"""
    import os

    from click.testing import CliRunner

    from innpar_freia.cli import cli

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    checkpoint = str(tiny_run / "checkpoints" / "best.pt")
    for prediction in (locked / "p.h5", locked / "new" / "p.h5"):
        args = ["eval", "--checkpoint", checkpoint, "--data", str(synth_file)]
        result = CliRunner().invoke(
            cli, [*args, "--out", str(tmp_path / "ev"), "--save-predictions", str(prediction)]
        )
        assert result.exit_code == 1, result.output
        assert f"cannot write {prediction}: {locked} is not writable" in result.output
        assert not (tmp_path / "ev").exists() and list(locked.iterdir()) == []


def test_staged_outputs_clean_up_when_a_staged_file_cannot_be_removed(tmp_path: Path):
    """On a read-only folder, removing a staged file that was never written fails with
    EROFS rather than "missing": that error replaced the one that stopped the work, and the
    folders the outputs had made were left behind."""
    from innpar_freia.outputs import StagedOutputs

    stubborn = tmp_path / "ro"
    stubborn.mkdir()

    class Stopped(Exception):
        pass

    original = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.parent == stubborn:
            raise OSError(30, "Read-only file system", str(self))
        original(self, missing_ok=missing_ok)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "unlink", unlink)
        with pytest.raises(Stopped), StagedOutputs() as staged:
            staged.write_text(tmp_path / "out" / "figures" / "a.txt", "a")
            staged.stage(stubborn / "p.h5")
            raise Stopped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ro"]
