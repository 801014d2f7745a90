"""Shared fixtures: small synthetic files, and the real data in ../shared when it is there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The real PhysioNet/CinC 2015 data lives beside the checkout and is never committed.
SHARED_DATA = Path(
    os.environ.get("INNPAR_SHARED_DATA", REPO.parent / "shared" / "data" / "challenge2015")
)


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``../shared/data/challenge2015``; tests that need it skip cleanly when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real data not available at {SHARED_DATA} (set INNPAR_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def synth_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic window file: 10 subjects x 1.5 min at 125 Hz, 5 folds."""
    from innpar_freia.data.synthetic import synthesize_dataset

    path = tmp_path_factory.mktemp("synth") / "synth.h5"
    return synthesize_dataset(path, subjects=10, minutes=1.5, fs=125.0, seed=3)


@pytest.fixture(scope="session")
def tiny_run(synth_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run directory of the ``tiny`` preset trained for 2 epochs on ``synth_file`` (seconds)."""
    from innpar_freia.config import resolve_config
    from innpar_freia.train import train

    run = tmp_path_factory.mktemp("runs") / "00000-tiny"
    train(resolve_config("tiny", train={"epochs": 2, "device": "cpu"}), synth_file, run)
    return run


@pytest.fixture
def captured(monkeypatch):
    """The figures a plot function saves, kept (still saved) to look at their artists."""
    from innpar_freia import plots

    figs = []
    real = plots.save_figure

    def keep(fig, path):
        figs.append(fig)
        return real(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    return figs


@pytest.fixture
def no_group(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    """torch.distributed as a process that has joined no group sees it, with the calls
    that would create or destroy one recorded instead of made."""
    import torch.distributed as dist

    from innpar_freia import distributed

    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(distributed, "_JOINED", [])
    monkeypatch.setattr(dist, "is_initialized", lambda: bool(calls))
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.append(("init", backend)))
    monkeypatch.setattr(dist, "destroy_process_group", lambda: calls.append(("destroy", None)))
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    return calls


@pytest.fixture
def no_access():
    """``no_access(path)``: takes every permission from a file or folder for the test (given
    back after it) and returns it; skips the test where that takes nothing away: root
    reads anything unless run under ``setpriv --bounding-set=-dac_override,-dac_read_search
    --inh-caps=-dac_override,-dac_read_search``, as test_recording_import's
    ``test_the_permission_tests_run_as_root_too`` runs them."""
    taken: list[tuple[Path, int]] = []

    def take(path: Path) -> Path:
        taken.append((path, path.stat().st_mode & 0o7777))
        path.chmod(0)
        if os.access(path, os.R_OK):
            pytest.skip("permissions do not bind here (root with CAP_DAC_OVERRIDE)")
        return path

    yield take
    for path, mode in reversed(taken):
        path.chmod(mode)


@pytest.fixture
def float64_default():
    """torch's default dtype set to float64 for the test, as scientific notebooks often do
    (the caller's default given back after it)."""
    import torch

    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(default)
