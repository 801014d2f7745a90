"""Helpers shared by the tests: run the CLI, assert a clean user-error failure, compare the
weights of two checkpoints."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from click.testing import CliRunner, Result

from innpar_freia.checkpoint import read_checkpoint
from innpar_freia.cli import cli

# The config.json of a run killed before its first checkpoint, as innpar train writes it
# (atomically, whole, before the first epoch): what a folder must hold to be taken for a
# run (train.foreign_run_files); "{}" is a user's file.
KILLED_RUN_CONFIG = json.dumps(
    {"preset": "tiny", "model": {}, "train": {}, "data": {}, "normalisation": {}, "environment": {}}
)


def git_in(folder: Path) -> Callable[..., str]:
    """``git(*args)``: runs git in ``folder`` with a throwaway identity, returns stdout."""

    def git(*args: str) -> str:
        cmd = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
        return subprocess.run(cmd, cwd=folder, check=True, capture_output=True, text=True).stdout

    return git


def run_cli(*args: object) -> Result:
    """``innpar ARGS`` in-process; exceptions other than user errors propagate."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def assert_clean_failure(result: Result, out: Path, *fragments: str) -> None:
    """A user error: exit code 1, one 'Error:' message with every fragment, no traceback,
    and no output (or temporary) file left behind."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    assert sum(line.startswith("Error:") for line in lines) == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*"))


def max_weight_difference(a: Path, b: Path) -> float:
    """Largest absolute difference between the weights of two checkpoint files."""
    sa, sb = read_checkpoint(a)["model_state"], read_checkpoint(b)["model_state"]
    assert sa.keys() == sb.keys()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa)


def terminate_when(command: list[str], ready: Callable[[], bool], timeout: float = 120) -> bytes:
    """Start ``command``, send it SIGTERM once ``ready()`` holds, and check that it stopped
    as a terminated command does (exit 143, no traceback); returns its stderr."""
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert b"Traceback" not in err
    return err


def dead_aside(folder: Path) -> Path:
    """A set-aside folder in ``folder`` as an interrupted replacement leaves it: named after
    a process of this host that has ended (``.replaced.<host>.<pid>.<random>``)."""
    import socket
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    aside = folder / f".replaced.{socket.gethostname()}.{dead}.abc"
    aside.mkdir()
    return aside


def leave_a_killed_force(run_dir: Path) -> Path:
    """What a ``--force`` killed outright (SIGKILL, torchrun stopping its ranks) leaves in
    ``run_dir``: the old run set aside under a dead process's name, and the new run's
    ``config.json``. Returns the set-aside folder."""
    aside = dead_aside(run_dir)
    for name in ("config.json", "metrics.jsonl", "checkpoints"):
        os.replace(run_dir / name, aside / name)
    (run_dir / "config.json").write_text(KILLED_RUN_CONFIG)
    return aside


# Holds the run directory ARGV[1] as a training does (its lock), says so, waits to be killed.
_HOLD = """
import sys, time
from pathlib import Path
from innpar_freia.run_lock import training_lock
with training_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def hold_run_dir(run_dir: Path) -> subprocess.Popen:
    """A process of this checkout's code holding ``run_dir`` as a training does, once it
    holds it; the caller kills it (SIGKILL: what the kernel cleans up is all there is)."""
    import sys

    repo = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stdout.readline()
    if line.strip() != "held":
        raise AssertionError(proc.communicate())
    return proc


def write_matlab_header(path: Path) -> None:
    """Put MATLAB's v7.3 header into the 512-byte user block of the HDF5 file ``path``
    (made with ``h5py.File(path, "w", userblock_size=512)``), as ``save -v7.3`` does."""
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5"
    with path.open("r+b") as fh:
        fh.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")


def sine_windows(n: int, length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct paired (PPG, ABP) windows of ``length`` samples at 125 Hz: a 1.2 Hz
    pulse at a random phase with a little noise, none constant, ABP in mmHg."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / 125.0
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    abp = 90 + 25 * np.sin(2 * np.pi * 1.2 * t + phase) + rng.normal(0, 1, (n, length))
    ppg = np.sin(2 * np.pi * 1.2 * t + phase - 0.5) + rng.normal(0, 0.05, (n, length))
    return ppg, abp


def error_summary(
    mae: float | None, me: float | None = 0.0, sd: float | None = 1.0, n: int = 10
) -> dict:
    """One BP value's protocol numbers as an evaluation's metrics.json holds them."""
    return {
        "n": n,
        "mae": mae,
        "me": me,
        "sd": sd,
        "bhs": {"le5": 55.0, "le10": 80.0, "le15": 92.0},
        "bhs_grade": "B",
        "aami_pass": True,
        "aami2": {"pass": False},
        "ieee_grade": "A",
    }


def distinct_windows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` windows of 5 s at 125 Hz of smoothed noise (PPG, ABP around 90 mmHg): no two
    correlate anywhere near 0.99, so no two share signal for the leakage check."""
    rng = np.random.default_rng(seed)
    kernel = np.ones(9) / 9
    ppg = np.array([np.convolve(rng.normal(size=625), kernel, "same") for _ in range(n)])
    abp = 90 + 10 * np.array([np.convolve(rng.normal(size=625), kernel, "same") for _ in range(n)])
    return ppg, abp


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    """A CSV with a header of the column names and every value written exactly."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(columns))
        for row in zip(*columns.values(), strict=True):
            w.writerow([repr(float(v)) for v in row])
    return path


def pulse_train(seconds: float, fs: float, mid: float, amp: float, hz: float = 1.0) -> np.ndarray:
    """ABP ``mid - amp cos(2 pi hz t)`` in mmHg: feet (mid - amp) at multiples of 1/hz,
    peaks (mid + amp) halfway between."""
    t = np.arange(round(seconds * fs)) / fs
    return mid - amp * np.cos(2 * np.pi * hz * t)


def beat_cycles(seconds: float, fs: float, bpm: float, points) -> np.ndarray:
    """A periodic ABP through ``(time in the beat (s), mmHg)`` points, the first the foot."""
    t = np.arange(round(seconds * fs)) / fs
    times, values = zip(*points, strict=True)
    return np.interp(t % (60.0 / bpm), [*times, 60.0 / bpm], [*values, values[0]])


def suggested_calibration_at(message: str) -> float | None:
    """The time a calibration error suggests ("the first beats start at T s:
    --calibration-at T)", or to a Python caller "start_s=T" or "calibration_at=T in
    options"), or ``None`` where it suggests none."""
    found = re.search(
        r"the first beats start at ([0-9.]+) s: "
        r"(?:--calibration-at |start_s=|calibration_at=)([0-9.]+)(?: in options)?\)",
        message,
    )
    if found is None:
        return None
    assert found[1] == found[2], message
    return float(found[1])


def pulse_recording(seconds: float, seed: int, fs: float = 125.0) -> tuple[np.ndarray, np.ndarray]:
    """A pulse recording with irregular beats (periods 0.6-1.0 s, amplitudes +-10 %): ABP
    in mmHg with a dicrotic wave, and a PPG that trails it, smoother, on a drifting base."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * fs)) / fs
    abp = np.full(len(t), 75.0)
    ppg = 0.3 * np.sin(2 * np.pi * 0.1 * t + rng.uniform(0, 6))
    beat = rng.uniform(0, 0.5)
    while beat < seconds:
        k = rng.uniform(0.9, 1.1)
        abp += k * 45 * np.exp(-(((t - beat - 0.12) / 0.06) ** 2))
        abp += k * 12 * np.exp(-(((t - beat - 0.38) / 0.05) ** 2))
        ppg += k * np.exp(-(((t - beat - 0.3) / 0.13) ** 2))
        beat += rng.uniform(0.6, 1.0)
    return ppg, abp


def write_wfdb(folder: Path, name: str, channels: dict[str, np.ndarray], fs: float = 250.0):
    """A WFDB record ``folder/name`` (.hea and .dat, 16-bit): channels named ABP or ART in
    mmHg, the others in NU. Returns the record's path without extension."""
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    units = ["mmHg" if k.upper() in ("ABP", "ART") else "NU" for k in channels]
    wfdb.wrsamp(
        name,
        fs=fs,
        units=units,
        sig_name=list(channels),
        p_signal=np.column_stack(list(channels.values())),
        fmt=["16"] * len(channels),
        write_dir=str(folder),
    )
    return folder / name
