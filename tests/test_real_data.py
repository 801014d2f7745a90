"""Imports of the real PhysioNet/CinC 2015 files in ../shared (skipped when absent)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from scipy import signal as sps

from innpar_freia.data.importers import import_bp_benchmark, import_innpar_npy
from innpar_freia.data.matfile import load_mat
from innpar_freia.data.qc import band, resample_gapped
from innpar_freia.data.recording_importers import import_recordings
from innpar_freia.data.recordings import read_wfdb
from innpar_freia.data.store import read_info, read_reference, read_signals

pytestmark = pytest.mark.realdata
FS = 125.0


@pytest.fixture(scope="module")
def records(real_data: Path) -> list[dict[str, str]]:
    with (real_data / "wfdb" / "records.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def wfdb_import(real_data: Path, records, tmp_path_factory):
    """The WFDB folder imported once, with subjects named as in the fold files."""
    tmp = tmp_path_factory.mktemp("wfdb")
    smap = tmp / "subjects.csv"
    lines = [
        f"{r['subfolder']}/{r['record']},c2015_{r['subfolder']}_{r['record']}" for r in records
    ]
    smap.write_text("record,subject\n" + "\n".join(lines) + "\n")
    out = tmp / "wfdb.h5"
    # The zero padding bp-benchmark's resampling used: its windows exactly.
    report = import_recordings("wfdb", real_data / "wfdb", out, subject_map=smap, edges="zeros")
    return report, out


def _peak_offsets(ppg: np.ndarray, abp: np.ndarray) -> np.ndarray:
    """Seconds from each band-passed ABP beat to the nearest band-passed PPG beat."""
    out = []
    for p, a in zip(ppg.astype(np.float64), abp.astype(np.float64), strict=True):
        zs = [(x - x.mean()) / x.std() for x in (band(a, FS), band(p, FS))]
        pa, pp = (sps.find_peaks(z, prominence=0.5, distance=int(0.33 * FS))[0] for z in zs)
        out.extend(pp[np.argmin(np.abs(pp[None, :] - pa[:, None]), axis=1)] - pa)
    return np.array(out) / FS


def test_wfdb_reproduces_records_csv(wfdb_import, records) -> None:
    report, out = wfdb_import
    by_id = {s.id: s for s in report.sources}
    for r in records:
        src = by_id[f"{r['subfolder']}/{r['record']}"]
        if r["status"] == "usable":
            assert src.status == "kept", (r["record"], src.detail)
            assert src.lag_samples == int(r["lag_samples_125hz"]), r["record"]
            assert src.windows_kept == int(r["n_windows"]), r["record"]
        else:
            assert src.status == "rejected" and src.windows_kept == 0
            assert src.reason == r["reason"].split(":")[0], (r["record"], src.detail)
    info = read_info(out)
    assert info.n_windows == sum(int(r["n_windows"] or 0) for r in records) == 1012
    assert report.records_rejected == {
        "abp_flat": 2,
        "abp_nan": 1,
        "abp_near_zero": 1,
        "abp_not_pulsatile": 1,
        "abp_out_of_range": 3,
        "low_xcorr": 1,
        "pleth_flat": 1,
    }
    assert sum(report.windows_rejected.values()) == 458
    prov = info.provenance
    assert len(prov["inputs"]) == 68 and all(len(i["sha256"]) == 64 for i in prov["inputs"])


def test_wfdb_windows_equal_the_fold_files(wfdb_import, real_data: Path) -> None:
    _, out = wfdb_import
    info = read_info(out)
    ppg, abp = read_signals(out)
    sp = read_reference(out, "SP")
    found = 0
    for k in range(4):
        fold = load_mat(real_data / "bp_benchmark" / f"signal_fold_{k}.mat")
        row = {t: i for i, t in enumerate(fold["trial"])}
        mine = [i for i, s in enumerate(info.subjects) if s in set(fold["patient"])]
        assert {"c2015_" + info.window_ids[i].replace("/", "_") for i in mine} == {
            t for t in fold["trial"] if t.rsplit("_", 1)[0] in set(info.subjects)
        }
        for i in mine:
            j = row["c2015_" + info.window_ids[i].replace("/", "_")]
            assert info.start[i] == int(fold["trial"][j].rsplit("_", 1)[1])
            np.testing.assert_allclose(ppg[i], fold["signal"][j], rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(abp[i], fold["abp_signal"][j], rtol=0, atol=2e-5)
            assert abs(sp[i] - fold["SP"][j, 0]) < 1e-4
            found += 1
    assert found == info.n_windows


def test_wfdb_beats_line_up_after_alignment(wfdb_import, real_data: Path) -> None:
    _, out = wfdb_import
    info = read_info(out)
    ppg, abp = read_signals(out)
    for subject in np.unique(info.subjects):
        sel = info.subjects == subject
        offsets = np.abs(_peak_offsets(ppg[sel], abp[sel]))
        assert np.median(offsets) <= 0.1, (subject, np.median(offsets))
    # The check can fail: without the shift, a long-delay record's beats are far apart.
    rec = read_wfdb(real_data / "wfdb" / "training" / "400")
    p = resample_gapped(rec.signals["PLETH"], rec.fs, FS)[: 10 * 625].reshape(10, 625)
    a = resample_gapped(rec.signals["ABP"], rec.fs, FS)[: 10 * 625].reshape(10, 625)
    assert np.median(np.abs(_peak_offsets(p, a))) > 0.1


def test_innpar_npy_round_trips_the_real_layout(real_data: Path, tmp_path: Path) -> None:
    layout = real_data / "innpar_layout"
    out = tmp_path / "npy.h5"
    result = run_cli("data", "import", "innpar-npy", layout, "--out", out, "--fs", 125)
    assert result.exit_code == 0, result.output
    info = read_info(out)
    names = sorted(p.stem for p in (layout / "ppg").glob("*.npy"))
    assert list(info.window_ids) == names and info.n_windows == 120
    assert len(np.unique(info.subjects)) == 119
    assert all(w.startswith(s + "_") for w, s in zip(info.window_ids, info.subjects, strict=True))
    ppg, abp = read_signals(out)
    for i, name in enumerate(names):
        for arr, sub in ((ppg, "ppg"), (abp, "abp")):
            original = np.load(layout / sub / f"{name}.npy")
            assert original.dtype == np.float32 and original.shape == (1, 625)
            assert np.array_equal(arr[i], original[0]), (sub, name)
    # The same windows as the bp-benchmark folds: starts and values agree.
    bpb = tmp_path / "bpb.h5"
    import_bp_benchmark(real_data / "bp_benchmark", bpb)
    ref = read_info(bpb)
    row = {w: i for i, w in enumerate(ref.window_ids)}
    rows = np.array([row[n] for n in names])
    assert np.array_equal(ref.start[rows], info.start)
    assert np.array_equal(read_signals(bpb, rows)[1], abp)


def test_innpar_npy_real_layout_python_api_reports_assumed_fs(real_data, tmp_path) -> None:
    report = import_innpar_npy(real_data / "innpar_layout", tmp_path / "o.h5")
    assert report.fs == 125.0 and report.fs_source == "default"
    assert read_info(tmp_path / "o.h5").provenance["fs_source"] == "default"


def test_line_edges_remove_the_zero_padding_s_ringing_and_change_only_record_starts(
    wfdb_import, real_data: Path, records
) -> None:
    """bp-benchmark resampled with zero padding: the first ~9 samples (at 125 Hz) of each
    record's first window ring by 10-33 mmHg. The default ``edges="line"`` keeps the level;
    every delay is the same, and only windows at a record's start change."""
    import wfdb

    report, zeros = wfdb_import
    line = zeros.with_name("line.h5")
    smap = zeros.with_name("subjects.csv")
    ours = import_recordings("wfdb", real_data / "wfdb", line, subject_map=smap)
    assert [s.lag_samples for s in ours.sources] == [s.lag_samples for s in report.sources]
    iz, il = read_info(zeros), read_info(line)
    # The first window's QC verdict changed in two records: 317 loses it, 431 gains it.
    assert set(iz.window_ids) - set(il.window_ids) == {"training/317_000000"}
    assert set(il.window_ids) - set(iz.window_ids) == {"training/431_000000"}
    (_, abp_z), (_, abp_l) = read_signals(zeros), read_signals(line)
    where = {w: i for i, w in enumerate(iz.window_ids)}
    closer = 0
    for j, w in enumerate(il.window_ids):
        if w not in where:
            continue
        i = where[w]
        changed = np.flatnonzero(np.abs(abp_z[i] - abp_l[j]) > 1e-3)
        if il.start[j] != 0:
            assert changed.size == 0, w
            continue
        assert changed.size and changed.max() < 12, w
        # Samples 1-7 against the 250-Hz record itself (sample 0 is a monitor's start-up
        # transient in both channels: 0.73-0.95 x the next).
        rid = w.rsplit("_", 1)[0]
        rec = wfdb.rdrecord(str(real_data / "wfdb" / rid))
        raw = rec.p_signal[2:16:2, rec.sig_name.index("ABP")]
        err_l, err_z = np.abs(abp_l[j, 1:8] - raw).max(), np.abs(abp_z[i, 1:8] - raw).max()
        assert err_l < 6.0, (w, err_l)
        closer += err_l < err_z
    assert closer >= 16  # of the 18 first windows both imports keep


def test_an_upside_down_ppg_is_turned_over_and_aligned_as_the_upright_one(
    real_data: Path, tmp_path: Path
) -> None:
    """Raw photodiode counts fall as blood volume rises: record 85's PPG negated was aligned
    half a beat off (delay 41 samples instead of 9), where its falls met the ABP's rises,
    and its 65 windows were kept upside down without a word. It is turned over: the same
    delay, the same windows as the upright record's, and a warning that names it; the
    upright record is left as it is."""
    import wfdb

    rec = wfdb.rdrecord(str(real_data / "wfdb" / "training" / "85"))
    ppg, abp = (rec.p_signal[:, rec.sig_name.index(k)] for k in ("PLETH", "ABP"))
    reports = {}
    for name, sign in (("up", 1.0), ("down", -1.0)):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "85.npz", PLETH=sign * ppg, ABP=abp, fs=rec.fs)
        reports[name] = import_recordings("npz", tmp_path / name, tmp_path / f"{name}.h5")
    up, down = reports["up"], reports["down"]
    assert up.sources[0].lag_samples == 9 and down.sources[0].lag_samples == 9
    assert up.sources[0].windows_kept == down.sources[0].windows_kept == 65
    assert "ppg_inverted" not in up.sources[0].to_dict() and not up.warnings
    assert down.sources[0].to_dict()["ppg_inverted"] is True
    assert down.warnings == [
        "85: PPG channel 'PLETH' is upside down (raw photodiode counts fall as blood volume "
        "rises): turned over, as the windows store it"
    ]
    (ppg_up, abp_up), (ppg_down, abp_down) = (read_signals(tmp_path / f"{n}.h5") for n in reports)
    assert np.array_equal(ppg_up, ppg_down) and np.array_equal(abp_up, abp_down)
