"""The evaluation protocol of ``docs/protocol.md``, implemented once.

Every accuracy number of the project comes from here: waveform MAE/RMSE/Pearson r; for SBP,
DBP and MAP the MAE, ME +- SD, BHS cumulative percentages and grade, AAMI (ISO 81060-2)
criteria 1 and 2 and the IEEE 1708 grade; pooled and per-subject; calibration-free and
calibrated protocols; the naive, linear and carry-forward baselines. All inputs are ABP in
mmHg on real samples only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from innpar_freia.signal import bp_values_batch, check_rate, zscore

BP_NAMES = ("sbp", "dbp", "map")
BHS_THRESHOLDS = (5.0, 10.0, 15.0)
# BHS grade -> minimum cumulative percentages at <= 5, 10, 15 mmHg.
BHS_GRADES = (("A", (60.0, 85.0, 95.0)), ("B", (50.0, 75.0, 90.0)), ("C", (40.0, 65.0, 85.0)))
# IEEE 1708 grade -> maximum MAE (mmHg).
IEEE_GRADES = (("A", 5.0), ("B", 6.0), ("C", 7.0))
AAMI_MAX_ABS_ME = 5.0
AAMI_MAX_SD = 8.0
# ISO 81060-2 (AAMI) criterion 2: a subject's mean error within +-10 mmHg with probability
# 0.85 under a normal distribution of subjects' mean errors; and a validation study's
# smallest population.
AAMI_WITHIN = 10.0
AAMI_PROBABILITY = 0.85
AAMI_MIN_SUBJECTS = 85
CALIBRATIONS = ("offset-scale", "offset")
# Errors are differences of values recorded to 0.1 mmHg or so, and 64.4 - 59.4 is
# 5.000000000000007 in floating point: the thresholds (BHS, AAMI, IEEE) are compared with
# this much slack (mmHg), so that such an error counts as the 5 mmHg it is. The window
# store and predictions files hold pressures as float32, where 64.3 - 59.3 is 5.0000038
# (float32 is exact to 1.5e-5 mmHg below 512 mmHg, so a difference to 3.1e-5): 1e-9 let
# 2.5 % of such errors miss their threshold. 1e-4 mmHg is no pressure a cuff or a
# catheter tells apart.
THRESHOLD_SLACK = 1e-4
# Below this predicted pulse pressure (mmHg) in the calibration window the scale of the
# offset+scale rule is meaningless (division by ~0); the offset alone is applied.
MIN_CALIBRATION_PP = 1.0


def bhs_grade(cumulative: tuple[float, float, float]) -> str:
    """BHS grade from the percentages of |error| <= 5, 10, 15 mmHg."""
    for grade, minimum in BHS_GRADES:
        if all(c >= m for c, m in zip(cumulative, minimum, strict=True)):
            return grade
    return "D"


def ieee_grade(mae: float) -> str:
    """IEEE 1708 grade from the MAE (mmHg): A <= 5, B <= 6, C <= 7, else D."""
    if np.isnan(mae):  # NaN compares False with every maximum: it was graded D
        raise ValueError(f"ieee_grade needs an MAE (mmHg), not {mae!r}")
    for grade, maximum in IEEE_GRADES:
        if mae <= maximum + THRESHOLD_SLACK:
            return grade
    return "D"


def bhs_percentages(abs_err: np.ndarray) -> tuple[float, float, float]:
    """Percentages of absolute errors (mmHg) within 5, 10 and 15 mmHg, the BHS thresholds
    (compared with :data:`THRESHOLD_SLACK`)."""
    abs_err = np.asarray(abs_err, dtype=np.float64)
    return tuple(float(100.0 * np.mean(abs_err <= t + THRESHOLD_SLACK)) for t in BHS_THRESHOLDS)


# The grade thresholds of BHS percentages at 5, 10 and 15 mmHg, for display.
BHS_MINIMA = tuple(tuple(sorted({m[i] for _, m in BHS_GRADES})) for i in range(3))


def graded_text(
    value: float, digits: int, thresholds: tuple[float, ...], sign: bool = False
) -> str:
    """``value`` with ``digits`` decimals, or more where rounding would show it on a grade
    threshold that it is not at: 59.96 % is not the 60 % BHS grade A needs, nor an ME of
    5.04 mmHg the AAMI's 5, and a table should not show the one next to the other's grade."""
    for d in range(digits, digits + 4):
        text = f"{value:+.{d}f}" if sign else f"{value:.{d}f}"
        shown = abs(float(text))
        if not any(shown == t and abs(abs(value) - t) > THRESHOLD_SLACK for t in thresholds):
            break
    return text


def aami_max_subject_sd(me: float) -> float | None:
    """ISO 81060-2 criterion 2: the largest SD (mmHg) of the subjects' mean errors allowed
    for a mean error ``me``: the SD at which a normal error N(me, SD) falls within
    +-10 mmHg with probability 0.85 (6.95 at ME 0, 4.81 at |ME| 5, the standard's table).
    ``None`` beyond |ME| 5 mmHg, where criterion 1 has failed and the table ends."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    me = abs(float(me))
    if me > AAMI_MAX_ABS_ME + THRESHOLD_SLACK:
        return None

    def within(sd: float) -> float:
        p = norm.cdf((AAMI_WITHIN - me) / sd) - norm.cdf((-AAMI_WITHIN - me) / sd)
        return float(p) - AAMI_PROBABILITY

    return float(brentq(within, 1e-6, 4.0 * AAMI_WITHIN, xtol=1e-10))


def aami_criterion2(err: np.ndarray, subjects: np.ndarray) -> dict[str, Any]:
    """ISO 81060-2 criterion 2 of errors (mmHg) from ``subjects``: the sample SD of the
    subjects' mean errors against :func:`aami_max_subject_sd` of the pooled mean error.
    ``pass`` is ``None`` with fewer than 2 subjects (no SD)."""
    err = np.asarray(err, dtype=np.float64)
    subjects = np.asarray(subjects)
    names, which = np.unique(subjects, return_inverse=True)
    means = np.bincount(which, weights=err, minlength=names.size) / np.maximum(
        np.bincount(which, minlength=names.size), 1
    )
    out: dict[str, Any] = {"n_subjects": int(names.size), "sd": None, "max_sd": None}
    out["pass"] = None
    if names.size < 2:
        return out
    out["sd"] = float(means.std(ddof=1))
    out["max_sd"] = aami_max_subject_sd(float(err.mean()))
    out["pass"] = out["max_sd"] is not None and out["sd"] <= out["max_sd"] + THRESHOLD_SLACK
    return out


def _same_shape(pred: Any, ref: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``pred`` and ``ref`` as float64 arrays of one shape, holding numbers only: numpy
    would broadcast a (n,) against an (n, 1) into n x n errors, and a NaN would turn into
    grades of an error that is undefined."""
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape:
        raise ValueError(f"{where}: predictions {pred.shape} and references {ref.shape} differ")
    if not (np.isfinite(pred).all() and np.isfinite(ref).all()):
        raise ValueError(f"{where}: predictions or references hold NaN or inf")
    return pred, ref


def error_stats(pred: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    """Errors of one blood-pressure value over windows (mmHg): MAE, ME, SD, BHS, AAMI, IEEE.

    ``sd`` is the sample standard deviation of ``pred - ref`` (ddof=1), the AAMI form:
    ``None`` for a single window, where it is undefined, and so is the AAMI criterion.
    """
    pred, ref = _same_shape(pred, ref, "error_stats")
    err = pred - ref
    n = err.size
    if n == 0:
        return {
            "n": 0,
            "mae": None,
            "me": None,
            "sd": None,
            "bhs": None,
            "bhs_grade": None,
            "aami_pass": None,
            "ieee_grade": None,
        }
    abs_err = np.abs(err)
    mae = float(abs_err.mean())
    me = float(err.mean())
    sd = float(err.std(ddof=1)) if n > 1 else None
    cumulative = bhs_percentages(abs_err)
    aami = (
        None
        if sd is None
        else bool(
            abs(me) <= AAMI_MAX_ABS_ME + THRESHOLD_SLACK and sd <= AAMI_MAX_SD + THRESHOLD_SLACK
        )
    )
    return {
        "n": int(n),
        "mae": mae,
        "me": me,
        "sd": sd,
        "bhs": {"le5": cumulative[0], "le10": cumulative[1], "le15": cumulative[2]},
        "bhs_grade": bhs_grade(cumulative),
        "aami_pass": aami,
        "ieee_grade": ieee_grade(mae),
    }


def pearson_per_window(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Pearson r of each window; NaN where either window is constant."""
    # Constant windows are detected exactly (max == min): subtracting a float mean from a
    # constant can leave ~1e-14 residues that would give a meaningless r.
    constant = (np.ptp(pred, axis=1) == 0) | (np.ptp(ref, axis=1) == 0)
    p = pred - pred.mean(axis=1, keepdims=True)
    r = ref - ref.mean(axis=1, keepdims=True)
    den = np.sqrt((p * p).sum(axis=1) * (r * r).sum(axis=1))
    ok = ~constant & (den > 0)
    return np.where(ok, (p * r).sum(axis=1) / np.where(ok, den, 1.0), np.nan)


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of two 1-D samples; NaN where it is undefined or says nothing: fewer than
    3 points (two points are always +-1: the analysis scripts showed "r 1.00" between the
    levels of a fold's 2 subjects) or a side that does not vary (one subject, a model that
    predicts one level for everybody), instead of numpy's warnings."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    # Unequal samples failed in numpy's corrcoef, with a message about concatenation.
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"pearson_r needs two 1-D samples of one length, not {a.shape} and {b.shape}"
        )
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def waveform_stats(pred: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    """Waveform MAE and RMSE over all samples (mmHg), and the mean per-window Pearson r
    over the ``r_windows`` windows that have one (``None`` when every predicted window is
    constant, e.g. the naive baseline)."""
    pred, ref = _same_shape(pred, ref, "waveform_stats")
    if pred.ndim != 2:
        raise ValueError(f"waveform_stats takes (windows, samples) arrays, got shape {pred.shape}")
    return WaveErrors.of(pred, ref).stats()


def _mean_or_none(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else None


# Windows are scored this many samples at a time (32 MB of float64 per array): the
# protocol's memory then does not grow with the windows' number beyond a few numbers each.
BLOCK_SAMPLES = 1 << 22


def blocks(n: int, length: int) -> list[slice]:
    """Consecutive row slices of ``n`` windows of ``length`` samples, each about
    :data:`BLOCK_SAMPLES` samples (at least one window)."""
    step = max(1, BLOCK_SAMPLES // max(1, length))
    return [slice(s, min(n, s + step)) for s in range(0, n, step)]


@dataclass
class WaveErrors:
    """Each window's waveform errors, summed over its samples: all that the waveform MAE,
    RMSE and mean Pearson r need, pooled or per subject, without the waveforms."""

    abs_sum: np.ndarray  # (n,) sum of |pred - ref| (mmHg)
    sq_sum: np.ndarray  # (n,) sum of (pred - ref)^2
    r: np.ndarray  # (n,) Pearson r, NaN where either window is constant
    length: int  # samples per window

    @classmethod
    def empty(cls, n: int, length: int) -> WaveErrors:
        return cls(np.empty(n), np.empty(n), np.empty(n), int(length))

    @classmethod
    def of(cls, pred: np.ndarray, ref: np.ndarray) -> WaveErrors:
        """The errors of ``(n, L)`` windows (computed a block at a time)."""
        out = cls.empty(pred.shape[0], pred.shape[1])
        for rows in blocks(*pred.shape):
            out.fill(rows, pred[rows], ref[rows])
        return out

    def fill(self, rows: slice, pred: np.ndarray, ref: np.ndarray) -> None:
        """Set windows ``rows`` from their predicted and reference waveforms."""
        pred = np.asarray(pred, dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        err = pred - ref
        self.abs_sum[rows] = np.abs(err).sum(axis=1)
        self.sq_sum[rows] = (err * err).sum(axis=1)
        self.r[rows] = pearson_per_window(pred, ref)

    def __len__(self) -> int:
        return len(self.abs_sum)

    def __getitem__(self, sel: Any) -> WaveErrors:
        return WaveErrors(self.abs_sum[sel], self.sq_sum[sel], self.r[sel], self.length)

    def stats(self) -> dict[str, Any]:
        """Waveform MAE and RMSE over all samples and the mean per-window r (see
        :func:`waveform_stats`), with the number of windows that r is the mean of
        (``r_windows``: those whose prediction and reference both vary)."""
        n = len(self)
        samples = n * self.length
        if samples == 0:
            return {"n_windows": 0, "mae": None, "rmse": None, "r": None, "r_windows": 0}
        has_r = np.isfinite(self.r)
        return {
            "n_windows": int(n),
            "mae": float(self.abs_sum.sum() / samples),
            "rmse": float(np.sqrt(self.sq_sum.sum() / samples)),
            "r": float(self.r[has_r].mean()) if has_r.any() else None,
            "r_windows": int(has_r.sum()),
        }


@dataclass
class Scored:
    """The windows one method is scored on in one protocol: their SBP/DBP/MAP (mmHg), their
    subjects and their waveform errors (:class:`WaveErrors`), which is all that
    :func:`score` needs; the waveforms themselves are not kept (build one from them with
    :meth:`from_windows`)."""

    bp_pred: np.ndarray  # (n, 3) SBP, DBP, MAP
    bp_ref: np.ndarray  # (n, 3)
    subjects: np.ndarray  # (n,)
    wave: WaveErrors
    # Calibrated windows only: those whose subject's offset+scale calibration fell back on
    # the offset alone (a pulse pressure below MIN_CALIBRATION_PP), which score() counts.
    offset_only: np.ndarray | None = None  # (n,) bool

    @classmethod
    def from_windows(
        cls,
        pred: np.ndarray,
        ref: np.ndarray,
        bp_pred: np.ndarray,
        bp_ref: np.ndarray,
        subjects: np.ndarray,
    ) -> Scored:
        """Predicted and reference windows ``(n, L)`` (mmHg) with their BP values."""
        pred, ref = _same_shape(pred, ref, "Scored")
        if pred.ndim != 2:
            raise ValueError(f"Scored takes (windows, samples) arrays, got shape {pred.shape}")
        return cls(
            np.asarray(bp_pred), np.asarray(bp_ref), np.asarray(subjects), WaveErrors.of(pred, ref)
        )

    def __len__(self) -> int:
        return len(self.wave)

    def __getitem__(self, sel: Any) -> Scored:
        only = None if self.offset_only is None else self.offset_only[sel]
        return Scored(self.bp_pred[sel], self.bp_ref[sel], self.subjects[sel], self.wave[sel], only)


def score(s: Scored, with_subjects: bool = True) -> dict[str, Any]:
    """Pooled and per-subject metrics of :class:`Scored` windows."""
    out: dict[str, Any] = {
        "n_windows": len(s),
        "n_subjects": len(np.unique(s.subjects)) if len(s) else 0,
        "waveform": s.wave.stats(),
    }
    if s.offset_only is not None:
        # Said in the report: these subjects were asked an offset and scale, given an offset.
        out["n_subjects_offset_only"] = len(np.unique(s.subjects[s.offset_only]))
    for j, name in enumerate(BP_NAMES):
        out[name] = error_stats(s.bp_pred[:, j], s.bp_ref[:, j])
        out[name]["aami2"] = aami_criterion2(s.bp_pred[:, j] - s.bp_ref[:, j], s.subjects)
    if with_subjects:
        rows = per_subject_rows(s)
        out["per_subject"] = per_subject_average(rows)
        out["subjects"] = rows
    return out


def per_subject_rows(s: Scored) -> list[dict[str, Any]]:
    """One row per subject: its windows, waveform MAE/RMSE/r, and SBP/DBP/MAP MAE and ME."""
    rows = []
    for subject, sel in subject_members(s.subjects).items():  # sorted by subject
        w = s.wave[sel].stats()
        row: dict[str, Any] = {"subject": subject, "n_windows": len(sel)}
        row.update({f"wave_{k}": w[k] for k in ("mae", "rmse", "r")})
        for j, name in enumerate(BP_NAMES):
            err = s.bp_pred[sel, j] - s.bp_ref[sel, j]
            row[f"{name}_mae"] = float(np.abs(err).mean())
            row[f"{name}_me"] = float(err.mean())
        rows.append(row)
    return rows


def per_subject_average(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Averages over subjects of the per-subject numbers (each person counts once)."""
    if not rows:
        return {"n_subjects": 0}
    keys = [k for k in rows[0] if k not in ("subject", "n_windows")]
    out: dict[str, Any] = {"n_subjects": len(rows)}
    for k in keys:
        out[k] = _mean_or_none([r[k] for r in rows])
    return out


# ----------------------------------------------------------------------------- calibration


def time_order(start: np.ndarray, rows: np.ndarray, subjects: np.ndarray) -> np.ndarray:
    """The protocol's time order of windows within each subject (docs/protocol.md): a
    window's ``start`` (its first sample in its recording), or its row in the file for every
    window of a subject with an unknown start (-1). A subject with known and unknown starts
    is in file order throughout: an unknown start says nothing about where the window lies
    among the known ones, and setting rows beside sample numbers, as before, put it anywhere.
    Keys are compared only within a subject."""
    start = np.asarray(start, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    subjects = np.asarray(subjects)
    unknown = start < 0
    if unknown.any():
        unknown = np.isin(subjects, np.unique(subjects[unknown]))
    return np.where(unknown, rows, start)


def calibration_windows(subjects: np.ndarray, order: np.ndarray) -> dict[str, int]:
    """Index of each subject's calibration window: its first window in time order
    (smallest ``order``, ties broken by position)."""
    first: dict[str, int] = {}
    for i in np.lexsort((np.arange(len(order)), order)):
        first.setdefault(subjects[i], int(i))
    return first


def subject_members(subjects: np.ndarray) -> dict[str, np.ndarray]:
    """Each subject's window indices, ascending, found in one sort: comparing every
    subject with the whole array was quadratic (128 s for 700k windows of 20k subjects)."""
    subjects = np.asarray(subjects)
    if subjects.size == 0:
        return {}
    names, inverse = np.unique(subjects, return_inverse=True)
    rows = np.argsort(inverse, kind="stable")
    ends = np.cumsum(np.bincount(inverse, minlength=len(names)))[:-1]
    return dict(zip(names.tolist(), np.split(rows, ends), strict=True))


@dataclass(frozen=True)
class Calibration:
    """The calibrated protocol's affine map: ``pred' = (pred - pred_level) * scale + ref_level``
    (mmHg). Built by :func:`calibration_for`; applied with :meth:`apply`."""

    pred_level: float
    scale: float
    ref_level: float
    # offset-scale asked, the offset alone applied: a pulse pressure below
    # MIN_CALIBRATION_PP says nothing of the scale.
    offset_only: bool = False

    def apply(self, pred: np.ndarray) -> np.ndarray:
        return _calibrated(pred, self.pred_level, self.scale, self.ref_level)

    def to_dict(self) -> dict[str, float]:
        return {"pred_level": self.pred_level, "scale": self.scale, "ref_level": self.ref_level}


def calibration_for(
    pred_level: float,
    pred_sbp: float,
    pred_dbp: float,
    ref_sbp: float,
    ref_dbp: float,
    ref_level: float | None = None,
    mode: str = "offset-scale",
) -> Calibration:
    """The protocol's offset(+scale) rule from one calibration segment (all values in mmHg).

    ``scale = PP_ref / PP_pred`` (1 in ``offset`` mode, or when the predicted or the
    reference pulse pressure is below :data:`MIN_CALIBRATION_PP`); the prediction's mean
    level ``pred_level`` is moved to the reference's mean level ``ref_level``. This is the
    one implementation of the rule, used by the evaluation protocol (a reference window)
    and by ``innpar reconstruct`` (a reference ABP segment, or a cuff reading).

    A cuff gives SBP/DBP but no mean level (``ref_level=None``). The level is then taken
    where the calibrated prediction's own shape puts it: ``ref_level = mid_ref + (pred_level
    - mid_pred) * scale`` with ``mid = (SBP + DBP) / 2``, so that with the scale applied the
    calibration segment's SBP and DBP become exactly the cuff's, and with the offset alone
    their mid-point does.
    """
    if mode not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}, but is {mode!r}")
    values = {"pred_level": pred_level, "pred_sbp": pred_sbp, "pred_dbp": pred_dbp}
    values.update({"ref_sbp": ref_sbp, "ref_dbp": ref_dbp, "ref_level": ref_level})
    bad = [k for k, v in values.items() if v is not None and not np.isfinite(float(v))]
    if bad:
        raise ValueError(f"calibration values must be finite numbers (mmHg): {', '.join(bad)}")
    if ref_level is None and ref_sbp <= ref_dbp:
        # A cuff reading with SBP not above DBP is a mistake (swapped values would turn
        # the waveform upside down); the command line refuses it too.
        raise ValueError(f"cuff SBP {ref_sbp:g} is not above its DBP {ref_dbp:g} mmHg")
    scale = 1.0
    pp_pred = pred_sbp - pred_dbp
    pp_ref = ref_sbp - ref_dbp
    # A reference segment's pulse pressure below MIN_CALIBRATION_PP (an artefact can put
    # its median peak below its median trough) says nothing about the scale either.
    offset_only = mode == "offset-scale" and min(pp_pred, pp_ref) < MIN_CALIBRATION_PP
    if mode == "offset-scale" and not offset_only:
        scale = pp_ref / pp_pred
    if ref_level is None:
        ref_level = 0.5 * (ref_sbp + ref_dbp) + (pred_level - 0.5 * (pred_sbp + pred_dbp)) * scale
    return Calibration(float(pred_level), float(scale), float(ref_level), offset_only)


def _calibrated(pred: np.ndarray, pred_level: Any, scale: Any, ref_level: Any) -> np.ndarray:
    """``(pred - pred_level) * scale + ref_level`` in float64: the calibrated protocol's map,
    of one calibration (numbers) or of a window each (columns)."""
    return (np.asarray(pred, dtype=np.float64) - pred_level) * scale + ref_level


@dataclass(frozen=True)
class SubjectCalibrations:
    """The calibrated protocol over a set of windows: each window's affine map
    ``pred' = (pred - pred_level) * scale + ref_level``, its subject's
    (:func:`calibration_for` on that subject's calibration window), and the windows it
    scores (all but each subject's calibration window)."""

    pred_level: np.ndarray  # (n,)
    scale: np.ndarray  # (n,)
    ref_level: np.ndarray  # (n,)
    scored: np.ndarray  # (n,) bool
    offset_only: np.ndarray  # (n,) bool: offset+scale asked, offset alone applied

    def apply(self, pred: np.ndarray, rows: Any = slice(None)) -> np.ndarray:
        """Calibrated windows ``rows`` from their predictions ``pred`` (mmHg)."""
        level, scale = self.pred_level[rows, None], self.scale[rows, None]
        return _calibrated(pred, level, scale, self.ref_level[rows, None])


def subject_calibrations(
    pred_level: np.ndarray,
    bp_pred: np.ndarray,
    bp_ref: np.ndarray,
    ref_level: np.ndarray,
    subjects: np.ndarray,
    order: np.ndarray,
    mode: str = "offset-scale",
) -> SubjectCalibrations:
    """The calibrated protocol from each window's mean predicted and reference level and
    BP values (mmHg): per subject, with the first window in time order as calibration
    window ``c``, ``pred' = (pred - mean(pred_c)) * PP_ref_c / PP_pred_c + mean(ref_c)``
    (``offset`` mode: scale 1), see :func:`calibration_for`."""
    if mode not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {', '.join(CALIBRATIONS)}, but is {mode!r}")
    subjects = np.asarray(subjects)  # a list compared with one subject is plain False
    n = len(subjects)
    out = SubjectCalibrations(
        np.zeros(n), np.ones(n), np.zeros(n), np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    )
    members = subject_members(subjects)
    for subject, c in calibration_windows(subjects, order).items():
        sel = members[subject]
        out.scored[c] = False
        cal = calibration_for(
            float(pred_level[c]),
            float(bp_pred[c, 0]),
            float(bp_pred[c, 1]),
            float(bp_ref[c, 0]),
            float(bp_ref[c, 1]),
            float(ref_level[c]),
            mode,
        )
        out.pred_level[sel], out.scale[sel], out.ref_level[sel] = (
            cal.pred_level,
            cal.scale,
            cal.ref_level,
        )
        out.offset_only[sel] = cal.offset_only
    return out


def window_means(x: np.ndarray) -> np.ndarray:
    """Each window's mean (mmHg), a block at a time (no float64 copy of ``x``)."""
    x = np.asarray(x)
    out = np.empty(len(x))
    for rows in blocks(*x.shape):
        out[rows] = np.asarray(x[rows], dtype=np.float64).mean(axis=1)
    return out


def calibrate(
    pred: np.ndarray,
    bp_pred: np.ndarray,
    bp_ref: np.ndarray,
    ref: np.ndarray,
    subjects: np.ndarray,
    order: np.ndarray,
    mode: str = "offset-scale",
    dtype: Any = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the calibrated protocol (:func:`subject_calibrations`) to predictions (mmHg).

    Returns the calibrated predictions (as ``dtype``; ``np.float32`` halves the memory of a
    file that stores them so) and a boolean mask of the windows to score (calibration
    windows are not scored).
    """
    pred = np.asarray(pred)
    cal = subject_calibrations(
        window_means(pred), bp_pred, bp_ref, window_means(ref), subjects, order, mode
    )
    out = np.empty(pred.shape, dtype=dtype)
    for rows in blocks(*pred.shape):
        out[rows] = cal.apply(pred[rows], rows)
    return out, cal.scored


def carry_forward_levels(
    ref_level: np.ndarray, bp_ref: np.ndarray, subjects: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The calibrated protocol's baseline from each window's mean reference level: every
    window of a subject is predicted as its calibration window's mean level and
    SBP/DBP/MAP. Returns ``(level, bp_pred, scored)``, ``level`` one number a window."""
    subjects = np.asarray(subjects)
    level = np.empty(len(subjects))
    bp = np.empty((len(subjects), 3))
    scored = np.ones(len(subjects), dtype=bool)
    members = subject_members(subjects)
    for subject, c in calibration_windows(subjects, order).items():
        sel = members[subject]
        level[sel] = ref_level[c]
        bp[sel] = bp_ref[c]
        scored[c] = False
    return level, bp, scored


def carry_forward(
    ref: np.ndarray, bp_ref: np.ndarray, subjects: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`carry_forward_levels` as windows: ``(pred, bp_pred, scored)``, ``pred`` the
    shape of ``ref``."""
    level, bp, scored = carry_forward_levels(window_means(ref), bp_ref, subjects, order)
    return np.repeat(level[:, None], np.shape(ref)[1], axis=1), bp, scored


# ----------------------------------------------------------------------------- baselines


@dataclass
class BaselineParams:
    """Training-split statistics behind the naive and linear baselines (mmHg)."""

    abp_mean: float
    sbp_mean: float
    dbp_mean: float
    map_mean: float
    linear_a: float
    linear_b: float

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)

    @classmethod
    def fit(cls, ppg: np.ndarray, abp: np.ndarray, fs: float) -> BaselineParams:
        """Fit on training windows: means, and ``abp ~ a * zPPG + b`` by least squares."""
        acc = BaselineAccumulator(fs)
        acc.add(ppg, abp)
        return acc.result()

    def naive(self, n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Naive prediction: the training mean level, and training mean SBP/DBP/MAP."""
        pred = np.full((n, length), self.abp_mean)
        bp = np.tile([self.sbp_mean, self.dbp_mean, self.map_mean], (n, 1))
        return pred, bp

    def linear(self, ppg: np.ndarray) -> np.ndarray:
        """Linear prediction ``a * zPPG + b`` (mmHg) per window."""
        return self.linear_a * zscore(ppg) + self.linear_b


class BaselineAccumulator:
    """Streams training windows block by block into :class:`BaselineParams` (bounded memory).

    The least-squares line ``abp ~ a * zPPG + b`` is solved from accumulated sums (the normal
    equations), which equals ``np.linalg.lstsq`` on all samples at once.
    """

    def __init__(self, fs: float):
        self.fs = fs
        self.n = 0
        self.sz = self.sy = self.szz = self.szy = 0.0
        self.bp_sum = np.zeros(3)
        self.windows = 0

    def add(self, ppg: np.ndarray, abp: np.ndarray) -> None:
        z = zscore(ppg)
        y = np.asarray(abp, dtype=np.float64)
        self.n += y.size
        self.sz += float(z.sum())
        self.sy += float(y.sum())
        self.szz += float((z * z).sum())
        self.szy += float((z * y).sum())
        self.bp_sum += bp_values_batch(y, self.fs).sum(axis=0)
        self.windows += y.shape[0]

    def result(self) -> BaselineParams:
        if self.windows == 0:
            raise ValueError("no training windows to fit the baselines on")
        mean_z, mean_y = self.sz / self.n, self.sy / self.n
        var_z = self.szz / self.n - mean_z**2
        a = (self.szy / self.n - mean_z * mean_y) / var_z if var_z > 0 else 0.0
        b = mean_y - a * mean_z
        bp = self.bp_sum / self.windows
        return BaselineParams(mean_y, float(bp[0]), float(bp[1]), float(bp[2]), float(a), float(b))


def _per_window(name: str, values: Any, n: int, needed_by: str | None = "the protocol") -> Any:
    """``values``, refused unless it has one entry per window (``None`` is let through
    where nothing, ``needed_by=None``, uses it): a short ``order`` calibrated only the
    subjects of its first windows and scored the others uncalibrated as "calibrated"; other
    lengths failed deep in numpy."""
    if values is None:
        if needed_by is not None:
            raise ValueError(f"{name} is None, but {needed_by} needs one entry per window")
        return values
    shape = np.shape(values)  # not np.asarray: ppg may be a dataset read a block at a time
    count = shape[0] if shape else "no"
    if count != n:
        raise ValueError(f"{name} has {count} entries but there are {n} windows")
    return values


def protocol_windows(
    pred: np.ndarray,
    ref: np.ndarray,
    ppg: np.ndarray,
    subjects: np.ndarray,
    order: np.ndarray,
    fs: float,
    baselines: BaselineParams | None = None,
    calibration: str | None = "offset-scale",
) -> dict[str, Scored]:
    """The windows each protocol scores, with every method's BP values and waveform errors.

    Keys: ``model`` (calibration-free); with ``baselines`` also ``naive`` and ``linear``;
    with ``calibration`` also ``model_calibrated`` and ``carry_forward`` (each subject's
    calibration window removed). :func:`evaluate_predictions` scores exactly these, and the
    report's figures plot exactly these, so numbers and figures cannot disagree.

    The windows (mmHg, any float type) are read a block of rows at a time, so that the
    memory this takes beyond them is a few numbers a window: every method's predictions
    exist only one block at a time.
    """
    pred, ref = np.asarray(pred), np.asarray(ref)
    fs = check_rate("fs", fs)
    if pred.shape != ref.shape or pred.ndim != 2:
        raise ValueError(f"pred {pred.shape} and ref {ref.shape} must be equal (windows, samples)")
    if calibration is not None and calibration not in CALIBRATIONS:
        raise ValueError(
            f"calibration must be one of {', '.join(CALIBRATIONS)}, but is {calibration!r}"
        )
    n, length = pred.shape
    subjects = np.asarray(_per_window("subjects", subjects, n)).astype(str)
    calibrated = "the calibrated protocol" if calibration is not None else None
    order = np.asarray(_per_window("order", order, n, calibrated))
    _per_window("ppg", ppg, n, "the linear baseline" if baselines is not None else None)
    bp_ref, bp_pred = np.empty((n, 3)), np.empty((n, 3))
    model = WaveErrors.empty(n, length)
    levels = {"pred": np.empty(n), "ref": np.empty(n)}
    if baselines is not None:
        naive, linear = WaveErrors.empty(n, length), WaveErrors.empty(n, length)
        linear_bp = np.empty((n, 3))
    for rows in blocks(n, length):
        r = np.asarray(ref[rows], dtype=np.float64)
        p = np.asarray(pred[rows], dtype=np.float64)
        bp_ref[rows] = bp_values_batch(r, fs)
        bp_pred[rows] = bp_values_batch(p, fs)
        model.fill(rows, p, r)
        levels["pred"][rows], levels["ref"][rows] = p.mean(axis=1), r.mean(axis=1)
        if baselines is not None:
            naive.fill(rows, baselines.naive(len(r), length)[0], r)
            lin = baselines.linear(ppg[rows])
            linear_bp[rows] = bp_values_batch(lin, fs)
            linear.fill(rows, lin, r)
    out = {"model": Scored(bp_pred, bp_ref, subjects, model)}
    if baselines is not None:
        naive_bp = baselines.naive(n, 1)[1]
        out["naive"] = Scored(naive_bp, bp_ref, subjects, naive)
        out["linear"] = Scored(linear_bp, bp_ref, subjects, linear)
    if calibration is not None:
        cal = subject_calibrations(
            levels["pred"], bp_pred, bp_ref, levels["ref"], subjects, order, calibration
        )
        cf_level, cf_bp, _ = carry_forward_levels(levels["ref"], bp_ref, subjects, order)
        scored = np.flatnonzero(cal.scored)
        cal_bp = np.empty((len(scored), 3))
        cal_wave, cf_wave = (
            WaveErrors.empty(len(scored), length),
            WaveErrors.empty(len(scored), length),
        )
        for part in blocks(len(scored), length):
            rows = scored[part]
            r = np.asarray(ref[rows], dtype=np.float64)
            c = cal.apply(pred[rows], rows)
            cal_bp[part] = bp_values_batch(c, fs)
            cal_wave.fill(part, c, r)
            cf_wave.fill(part, np.broadcast_to(cf_level[rows, None], r.shape), r)
        out["model_calibrated"] = Scored(
            cal_bp, bp_ref[scored], subjects[scored], cal_wave, cal.offset_only[scored]
        )
        out["carry_forward"] = Scored(cf_bp[scored], bp_ref[scored], subjects[scored], cf_wave)
    return out


def evaluate_predictions(
    pred: np.ndarray,
    ref: np.ndarray,
    ppg: np.ndarray,
    subjects: np.ndarray,
    order: np.ndarray,
    fs: float,
    baselines: BaselineParams | None = None,
    calibration: str | None = "offset-scale",
    windows: dict[str, Scored] | None = None,
) -> dict[str, Any]:
    """The whole protocol for one model's predictions (mmHg) on a set of windows.

    Returns ``{"calibration_free": {...}, "calibrated": {...}, "baselines": {...}}`` with
    the model's metrics in each protocol and, next to them, the naive and linear baselines
    (calibration-free, with MASE) and carry-forward (calibrated) on the same windows.
    ``windows``: the output of :func:`protocol_windows` for these arguments, when the caller
    already has it (saves computing the BP values twice).
    """
    if windows is None:
        windows = protocol_windows(pred, ref, ppg, subjects, order, fs, baselines, calibration)
    free = score(windows["model"])
    result: dict[str, Any] = {"calibration_free": free, "baselines": {}}
    if "naive" in windows:
        naive = baseline_score(windows["naive"])
        linear = baseline_score(windows["linear"])
        result["baselines"] = {"naive": naive, "linear": linear}
        free["mase"] = mase(free, naive)
        linear["mase"] = mase(linear, naive)
    if "model_calibrated" in windows:
        result["calibrated"] = score(windows["model_calibrated"])
        result["calibrated"]["calibration"] = calibration
        result["baselines"]["carry_forward"] = baseline_score(windows["carry_forward"])
    return result


def baseline_score(s: Scored) -> dict[str, Any]:
    """A baseline's metrics: pooled, and its per-subject averages (for the table that puts
    them next to the model's), without a row per subject."""
    out = score(s, with_subjects=False)
    out["per_subject"] = per_subject_average(per_subject_rows(s))
    return out


def mase(model: dict[str, Any], naive: dict[str, Any]) -> dict[str, float | None]:
    """Mean absolute scaled error: model MAE / naive MAE, for the waveform and each BP value."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else float(a / b)

    out = {"waveform": ratio(model["waveform"]["mae"], naive["waveform"]["mae"])}
    for name in BP_NAMES:
        out[name] = ratio(model[name]["mae"], naive[name]["mae"])
    return out
