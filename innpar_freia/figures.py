"""Figures from files (what ``innpar plot`` draws): a run's training curves, a predictions
file's reconstructions, Bland-Altman and error plots, and a reconstructed recording."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from innpar_freia.errors import DataError, UnknownRateError, option

if TYPE_CHECKING:  # pragma: no cover
    from innpar_freia.predictions import PredictionReader

PROTOCOLS = ("calibration-free", "calibrated")


def scope_phrase(split: Any, fold: Any = None) -> str:
    """Which windows a figure of an evaluation draws, in words ("test fold 3", "val split",
    "all windows"): the figures of one run's val and test evaluations are otherwise told
    apart by nothing in them."""
    if split in (None, ""):
        return ""
    if split == "all":
        return "all windows"
    return f"{split} fold {fold}" if fold is not None else f"{split} split"


def training_figure(run: str | Path, out: str | Path) -> Path:
    """Training curves of a run directory (or its ``metrics.jsonl``)."""
    from innpar_freia.plots import plot_training_curves
    from innpar_freia.report import read_epoch_records

    run = Path(run)
    path = run / "metrics.jsonl" if run.is_dir() else run
    if not path.is_file():
        raise DataError(f"no metrics.jsonl in {run}: is it a run directory of 'innpar train'?")
    history = read_epoch_records(path)
    if not history:
        raise DataError(f"{path} holds no epoch records")
    name = path.parent.name if path.name == "metrics.jsonl" else path.stem
    config = recorded_config(path.parent)
    return plot_training_curves(
        history,
        out,
        title=f"run {name}" + run_phrase(config),
        loss_weights=_loss_weights(config),
    )


def recorded_config(run: Path) -> dict[str, Any]:
    """``run/config.json`` (what ``innpar train`` recorded), or ``{}`` where there is none
    that can be read."""
    try:
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def run_phrase(config: dict[str, Any]) -> str:
    """What a run was, for its training figure's title (": tiny, test fold 3, data
    challenge2015.h5"), as the other figures name their model and fold: titled by the run's
    folder alone, the curves of two runs could not be told apart. Empty where config.json
    says none of it."""
    train, data = config.get("train"), config.get("data")
    train = train if isinstance(train, dict) else {}
    data = data if isinstance(data, dict) else {}
    parts = []
    if isinstance(config.get("preset"), str) and config["preset"]:
        parts.append(config["preset"])
    fold = train.get("test_fold")
    if "test_fold" in train and (fold is None or type(fold) is int):
        parts.append(scope_phrase("test", fold))  # None: the data file's own test split
    if isinstance(data.get("path"), str) and data["path"]:
        parts.append(f"data {Path(data['path']).name}")
    return f": {', '.join(parts)}" if parts else ""


def _loss_weights(config: dict[str, Any]) -> dict[str, Any] | None:
    """The training configuration of a run's config.json (the weights of the loss terms
    that metrics.jsonl's train_loss adds up), or None where there is none to read: the
    figure then labels the training loss as the whole loss."""
    train = config.get("train")
    if not isinstance(train, dict):
        return None
    # A weight that is not a number (a config.json edited by hand) says nothing either.
    numbers = all(
        isinstance(v, (int, float)) and not isinstance(v, bool)
        for k, v in train.items()
        if k.endswith("_weight") and v is not None
    )
    return train if numbers else None


def _scored(
    f: PredictionReader, protocol: str, bp: bool
) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For ``protocol``, of the predictions file open in ``f``: the dataset of its
    predictions, the file's rows of the windows it scores, which of those windows are
    finite, and with ``bp`` the SBP/DBP/MAP of the finite ones, predicted and reference, each
    ``(n, 3)``. The windows are read a block at a time and only these arrays are kept, so
    that the memory a figure takes does not grow with the file beyond them."""
    from innpar_freia.signal import bp_values_batch

    path = f.path
    if "reference" not in f:
        raise DataError(f"{path} holds no reference windows to compare with")
    name, keep = "prediction", np.ones(len(f), dtype=bool)
    if protocol == "calibrated":
        if "calibrated" not in f or "scored" not in f:
            raise DataError(
                f"{path} holds no calibrated predictions: evaluate with "
                + option(
                    "--calibration offset-scale or offset",
                    "calibration='offset-scale' or 'offset'",
                )
            )
        name, keep = "calibrated", f.rows("scored", slice(None))
    if not keep.any():
        raise DataError(f"{path}: no windows to plot for the {protocol} protocol")
    finite, bp_pred, bp_ref = [], [np.empty((0, 3))], [np.empty((0, 3))]
    for first, (pred, ref) in f.blocks(name, "reference"):
        scored = keep[first : first + len(pred)]
        pred, ref = pred[scored], ref[scored]
        # Windows holding NaN or inf (written by hand, or from a model that failed) have no
        # BP values and would wreck the axes: left out, and the figure's title says how many.
        ok = np.isfinite(pred).all(axis=1) & np.isfinite(ref).all(axis=1)
        finite.append(ok)
        if bp:
            bp_pred.append(bp_values_batch(pred[ok], f.fs))
            bp_ref.append(bp_values_batch(ref[ok], f.fs))
    ok = np.concatenate(finite)
    if not ok.any():
        raise DataError(f"{path}: every window to plot holds NaN or infinite values")
    return name, np.flatnonzero(keep), ok, np.concatenate(bp_pred), np.concatenate(bp_ref)


def predictions_figure(
    path: str | Path, kind: str, out: str | Path, protocol: str = "calibration-free", n: int = 4
) -> Path:
    """``kind``: ``reconstructions`` (the first ``n`` windows), ``bland-altman`` or
    ``errors`` of a predictions file (``innpar eval --save-predictions``). Only the windows
    drawn, and per window its BP values, are held in memory, not the file."""
    from innpar_freia import plots
    from innpar_freia.predictions import PredictionReader

    if protocol not in PROTOCOLS:
        raise DataError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        # n=-2 failed in matplotlib: "figure size must be positive finite".
        raise ValueError(f"n, the windows to draw, must be a whole number >= 1, not {n!r}")
    with PredictionReader(path) as f:
        abp = f.attrs.get("direction", "ppg2abp") == "ppg2abp"
        bp = abp and kind in ("bland-altman", "errors")
        name, sel, finite, bp_pred, bp_ref = _scored(f, protocol, bp)
        model = str(f.attrs.get("name") or f.attrs.get("checkpoint", ""))
        mode = str(f.attrs.get("calibration", ""))
        scope = scope_phrase(f.attrs.get("split"), f.attrs.get("fold"))
        model += f", {scope}" if scope else ""
        title = f"{model}: {protocol}" + (f" ({mode})" if protocol == "calibrated" and mode else "")
        if not finite.all():
            title += f" ({int((~finite).sum())} windows with NaN/inf left out)"
        if kind == "reconstructions":
            rows = sel[finite][:n]
            ref, pred = f.rows("reference", rows), f.rows(name, rows)
            subject, window_id = f.rows("subject", rows), f.rows("window_id", rows)
            fs = f.fs
    if kind == "reconstructions":
        # Not chosen by their errors, as innpar eval's report chooses its windows: said.
        title += f", first {len(rows)} windows in file order"
        return plots.plot_reconstructions(
            ref,
            pred,
            fs,
            out,
            titles=[f"{s} ({w})" for s, w in zip(subject, window_id, strict=True)],
            max_windows=n,
            ylabel="ABP (mmHg)" if abp else "PPG (z-score)",
            what="ABP" if abp else "PPG",
            units="mmHg" if abp else "z",
            markers=abp,
            title=title,
        )
    if not abp:
        raise DataError(f"{path} holds PPG, not ABP: {kind} plots need SBP/DBP/MAP")
    if kind == "bland-altman":
        return plots.plot_bland_altman(bp_pred, bp_ref, out, title=title)
    if kind == "errors":
        return plots.plot_error_distributions({"model": (bp_pred, bp_ref)}, out, title=title)
    raise ValueError(f"unknown figure kind {kind!r}")


def recording_figure(
    reconstruction: str | Path,
    source: str | Path,
    out: str | Path,
    *,
    fs: float | None = None,
    channel: str | None = None,
    reference_abp: str | None = None,
    direction: str | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Path:
    """A reconstructed recording (``innpar reconstruct`` output) over its input; the
    direction is read from the output's channel name (ABP or PPG) unless given. Without
    the summary written beside it, what cannot be checked is said to ``on_warning``."""
    from innpar_freia.data.recordings import check_recording_exists, detect_format, read_recording
    from innpar_freia.plots import plot_recording
    from innpar_freia.reconstruct import DIRECTIONS, detect_gaps, runs
    from innpar_freia.recording_bp import detect_beats

    check_recording_exists(reconstruction, "reconstruction")
    check_recording_exists(source, f"{option('--input', 'source')} recording")
    if Path(reconstruction).exists() and Path(source).exists():
        if Path(reconstruction).resolve() == Path(source).resolve():
            raise DataError(
                f"{reconstruction} is given as both the reconstruction and its "
                + option("--input", "source")
            )
    # What innpar reconstruct wrote beside it says which way it went, which channel it read
    # and what its samples were, how it was calibrated and where the recording's clock starts.
    summary = _reconstruction_summary(Path(reconstruction))
    if summary is None and on_warning is not None:
        from innpar_freia.reconstruct_file import side_paths

        # Another record of the same length and rate was drawn under it without a word.
        on_warning(
            f"{side_paths(Path(reconstruction), 'recording')['summary']} is missing or "
            f"unreadable: that {source} is the recording {reconstruction} was made from "
            "(and from which channel, which way) cannot be checked"
        )
    said = summary.get("direction") if summary is not None else None
    if direction is not None and said in DIRECTIONS and direction != said:
        raise DataError(
            f"{reconstruction} is {'an' if said[0] in 'aeiou' else 'a'} {said} reconstruction "
            "(its summary says so), not "
            f"{direction}: drop {option('--direction', 'direction')}"
        )
    if direction is None and said in DIRECTIONS:
        direction = said
    stated = summary.get("fs") if summary is not None else None
    if not (isinstance(stated, (int, float)) and not isinstance(stated, bool) and stated > 0):
        stated = None
    given_fs = fs
    if fs is None and stated is not None and detect_format(source) == "npy":
        fs = float(stated)  # an .npy states no rate: it is the one it was reconstructed at
    src = read_recording(source, fs=fs)
    # Whether it is the input at all is told by its samples, whatever its rate: checked
    # first, so that another recording is called that, not a wrong rate of this one.
    used = summary.get("channel") if summary is not None else None
    used = src.channels[0] if src.format == "npy" else used if isinstance(used, str) else None
    if summary is not None and isinstance(summary.get("input_sha256"), str):
        # Records of one database often share length and rate (the Challenge 2015's are
        # all 300 s at 250 Hz): only the samples tell record 85's output from record 86's.
        if used not in src.signals or src.fingerprint(used) != summary["input_sha256"]:
            differ = (
                f"whose samples differ from {source}'s"
                if used in src.signals
                else f"which {source} does not have"
            )
            raise DataError(
                f"{reconstruction} is not a reconstruction of {source}: its summary says it "
                f"was reconstructed from channel {used!r} of {summary.get('input')}, {differ}"
            )
    if stated is not None and not np.isclose(src.fs, stated):
        # An .npy input and output have the rate --fs gives them: a wrong one drew the
        # recording at twice its length without a word.
        raise DataError(
            f"{reconstruction} was reconstructed from {source} at {stated:g} Hz (its summary "
            f"says so), but {source} is read at {src.fs:g} Hz here"
            # --fs is only advised against where it was given (an .npy's own rate is the
            # summary's); a file that states another rate is another recording's copy.
            + (f"; drop {option('--fs', 'fs')}" if given_fs is not None else "")
        )
    npy = Path(reconstruction).suffix.lower() == ".npy"
    # An .npy carries neither rate nor name: it has the input's rate, and holds ABP unless
    # the direction says otherwise.
    npy_name = "PPG" if direction == "abp2ppg" else "ABP"
    try:
        rec = read_recording(
            reconstruction, fs=src.fs if npy else None, **({"channel": npy_name} if npy else {})
        )
    except UnknownRateError:
        # The reader's advice (--fs) is about --input here: an output of innpar
        # reconstruct states its rate (a CSV's time column, a WFDB header, an NPZ's fs).
        raise DataError(
            f"{reconstruction} states no sampling rate, so it is not an output of innpar "
            "reconstruct (a beats or windows table?); give the reconstructed recording"
        ) from None
    if not np.isclose(rec.fs, src.fs) or rec.n_samples != src.n_samples:
        raise DataError(
            f"{reconstruction} ({rec.n_samples} samples at {rec.fs:g} Hz) is not a "
            f"reconstruction of {source} ({src.n_samples} samples at {src.fs:g} Hz)"
        )
    out_name = rec.channels[0]
    if direction is None:
        direction = "ppg2abp" if out_name.upper() == "ABP" else "abp2ppg"
    abp = direction == "ppg2abp"
    output = rec.signals[out_name]
    kind = "ppg" if abp else "abp"
    if src.format == "npy":
        # Its one signal is what the direction reads (read_npy names it "ppg", so an ABP
        # input of abp2ppg was "no ABP channel").
        src = replace(src, signals={channel or kind: next(iter(src.signals.values()))})
        used = src.channels[0]
    if (
        channel is not None
        and used in src.signals
        and src.find(kind, channel, flag=option("--channel", "channel='NAME'")) != used
    ):
        # Drawn as its input, a channel it was not made from (an ECG under a PPG's ABP).
        raise DataError(
            f"{reconstruction} was reconstructed from channel {used!r} of {source} (its "
            f"summary says so), not {channel!r}: drop {option('--channel', 'channel')}"
        )
    if channel is None and used in src.signals:
        channel = used  # the channel it was reconstructed from, not a guess by its name
    in_channel = src.find(kind, channel, flag=option("--channel", "channel='NAME'"))
    if reference_abp is not None and not abp:
        # Drawn in mmHg over the z-scored PPG, a reference it is no reference of.
        raise DataError(
            f"{reconstruction} is a reconstructed PPG (abp2ppg): "
            f"{option('--reference-abp', 'reference_abp')} draws the ABP a reconstructed ABP is "
            "compared with; drop it"
        )
    reference = None
    ref_beats = None
    if reference_abp is not None:
        ref_name = src.find("abp", reference_abp, flag=option("--reference-abp", "reference_abp"))
        reference = src.signals[ref_name]
        valid, _ = detect_gaps(reference, src.fs, "abp")
        ref_beats = detect_beats(np.where(valid, reference, np.nan), src.fs)
    gaps = [(a / src.fs, b / src.fs) for a, b in runs(~np.isfinite(output))]
    title = f"{Path(reconstruction).name} from {Path(source).name}"
    calibration_s, origin, lag = None, 0.0, 0.0
    if summary is not None:
        from innpar_freia.reconstruct_file import calibration_phrase, checkpoint_phrase

        cal = summary.get("calibration")
        origin = float(summary.get("start_s") or 0.0)
        title += f", {calibration_phrase(cal)}"
        if summary.get("checkpoint"):
            # As reconstruct --plot titles it: which model drew it.
            model = checkpoint_phrase(
                summary["checkpoint"], summary.get("epoch"), summary.get("preset")
            )
            title += f"  [{model}]"
        if cal is not None:
            calibration_s = (cal["segment_s"][0] - origin, cal["segment_s"][1] - origin)
        # The output at t was made from the input at t + lag (--ppg-delay): the input panel
        # is shaded on the input's clock (plot_recording moves the output's gaps by it).
        delay = summary.get("delay_s")
        if isinstance(delay, (int, float)) and not isinstance(delay, bool) and 0 < delay < np.inf:
            lag = float(delay) if abp else -float(delay)
    return plot_recording(
        src.fs,
        src.signals[in_channel],
        output,
        out,
        direction=direction,
        source_label=f"{in_channel} ({src.units.get(in_channel) or 'a.u.'})",
        reference=reference,
        beats=detect_beats(output, src.fs) if abp else None,
        reference_beats=ref_beats,
        gaps=gaps,
        calibration_s=calibration_s,
        title=title,
        origin_s=origin,
        source_lag_s=lag,
    )


def _reconstruction_summary(reconstruction: Path) -> dict[str, Any] | None:
    """``STEM.summary.json`` beside a reconstruction, if it is there and readable."""
    from innpar_freia.reconstruct_file import side_paths

    path = side_paths(reconstruction, "recording")["summary"]
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    cal = summary.get("calibration") if isinstance(summary, dict) else None
    if not isinstance(summary, dict) or not (cal is None or "segment_s" in cal):
        return None
    return summary
