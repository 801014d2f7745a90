"""The messages of a user error name what the caller can change: the parameter to pass when
the Python API was called (``resume=True``), the option when the command line ran
(``--resume``). They named the CLI's options to a Python caller, who has none to pass."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from innpar_freia.config import resolve_config
from innpar_freia.errors import DataError, RunDirError, cli_spelling, option
from innpar_freia.evaluate import evaluate
from innpar_freia.reconstruct_file import reconstruct_file
from innpar_freia.reconstruct_folder import reconstruct_folder
from innpar_freia.report import check_report_outputs
from innpar_freia.train import train
from tests.helpers import pulse_recording, run_cli, write_csv

FS = 125.0


def tiny():
    return resolve_config("tiny", train={"epochs": 1, "device": "cpu"})


@pytest.fixture(scope="module")
def ckpt(tiny_run: Path) -> Path:
    return tiny_run / "checkpoints" / "best.pt"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One recording of 16 s at 125 Hz, with a PPG and an ABP channel."""
    d = tmp_path_factory.mktemp("records") / "in"
    d.mkdir()
    ppg, abp = pulse_recording(16, seed=1)
    write_csv(d / "c1.csv", {"t": np.arange(ppg.size) / FS, "PPG": ppg, "ABP": abp})
    return d


def test_option_follows_the_caller_and_the_cli_spelling_does_not_leak():
    assert option("--force", "force=True") == "force=True"
    with cli_spelling():
        assert option("--force", "force=True") == "--force"
    assert option("--force", "force=True") == "force=True"
    # Reset however the block ends: the CLI leaves its commands by exceptions.
    with pytest.raises(RuntimeError), cli_spelling():
        raise RuntimeError
    assert option("--force", "force=True") == "force=True"


def test_train_on_a_run_names_resume_and_force_as_parameters(synth_file: Path, tiny_run: Path):
    with pytest.raises(RunDirError) as err:
        train(tiny(), synth_file, tiny_run)
    assert str(err.value) == (
        f"{tiny_run} already holds a run; pass resume=True to continue it or force=True to "
        "start over (its checkpoints and metrics will be deleted)"
    )
    with pytest.raises(RunDirError) as err:
        train(None, synth_file, tiny_run, resume=True, force=True)
    assert str(err.value) == "resume=True and force=True contradict each other: choose one"


def test_resume_with_fewer_epochs_names_resume_overrides(synth_file: Path, tiny_run: Path):
    with pytest.raises(RunDirError) as err:
        train(None, synth_file, tiny_run, resume=True, resume_overrides={"epochs": 1})
    assert 'has completed 2 epochs; resume_overrides["epochs"] = 1 would end' in str(err.value)
    assert "--" not in str(err.value)


def test_the_cli_still_names_its_options_and_the_api_is_answered_in_its_terms_after_it(
    synth_file: Path, tiny_run: Path
):
    result = run_cli("train", "--data", synth_file, "--preset", "tiny", "--out", tiny_run)
    assert result.exit_code == 1
    assert "pass --resume to continue it or --force to start over" in result.output
    # The same process, after the command: the API's spelling again.
    with pytest.raises(RunDirError, match=r"pass resume=True to continue it or force=True"):
        train(tiny(), synth_file, tiny_run)


def test_evaluate_names_split_and_test_fold_as_parameters(ckpt: Path, synth_file: Path):
    with pytest.raises(DataError) as err:
        evaluate(ckpt, synth_file, "all", test_fold=1)
    assert str(err.value) == (
        "test_fold=1 chooses the test split, but split='all' scores every window; drop one of them"
    )
    # Every window of the file the checkpoint was trained on holds its training windows.
    with pytest.raises(DataError) as err:
        evaluate(ckpt, synth_file, "all")
    message = str(err.value)
    assert "score split='test' (or 'val'), or split='train' to score training windows" in message
    assert "--" not in message


def test_eval_through_the_cli_still_names_split_and_test_fold(ckpt: Path, synth_file: Path):
    result = run_cli(
        "eval", "--checkpoint", ckpt, "--data", synth_file, "--split", "all", "--test-fold", 1
    )
    assert result.exit_code == 1
    assert "--test-fold 1 chooses the test split, but --split all scores every" in result.output
    with pytest.raises(DataError, match=re.escape("test_fold=1 chooses the test split")):
        evaluate(ckpt, synth_file, "all", test_fold=1)


def test_reconstruct_folder_names_force_resume_and_calibration_as_parameters(
    ckpt: Path, folder: Path, tmp_path: Path
):
    out = tmp_path / "abp"
    reconstruct_folder(ckpt, folder, out, {"fs": FS})
    with pytest.raises(DataError) as err:
        reconstruct_folder(ckpt, folder, out, {"fs": FS})
    message = str(err.value)
    assert message.startswith("outputs exist: ")
    assert message.endswith(
        "; pass force=True in options to replace them (or resume=True to go on with the run "
        "they are from)"
    )
    with pytest.raises(DataError) as err:
        reconstruct_folder(ckpt, folder, out, {"fs": FS, "force": True}, resume=True)
    assert str(err.value) == (
        "resume=True keeps what an earlier run reconstructed, force=True in options replaces "
        "it: give one"
    )
    with pytest.raises(DataError) as err:
        reconstruct_folder(ckpt, folder, tmp_path / "cal", {"fs": FS, "calibration": "120/80"})
    assert str(err.value).startswith(
        "calibration='120/80' in options: one cuff reading is one person's; for a folder, give "
        "a table of readings (calibration='TABLE.csv' in options with columns"
    )
    with pytest.raises(DataError, match=r"out_dir .* names a folder"):
        reconstruct_folder(ckpt, folder, tmp_path / "x.csv", {"fs": FS})


def test_reconstruct_folder_through_the_cli_still_names_its_options(
    ckpt: Path, folder: Path, tmp_path: Path
):
    out = tmp_path / "abp"
    args = ("reconstruct", "--checkpoint", ckpt, folder, "--out", out, "--fs", FS)
    assert run_cli(*args).exit_code == 0
    result = run_cli(*args)
    assert result.exit_code == 1
    assert "; pass --force to replace them (or --resume to go on with" in result.output
    with pytest.raises(DataError, match=r"pass force=True in options to replace them \(or resume"):
        reconstruct_folder(ckpt, folder, out, {"fs": FS})


def test_reconstruct_file_names_its_parameters(ckpt: Path, folder: Path, tmp_path: Path):
    recording = folder / "c1.csv"
    with pytest.raises(DataError) as err:
        reconstruct_file(ckpt, recording, tmp_path / "abp", {"fs": FS, "reference_abp": "PPG"})
    assert str(err.value).startswith(
        "reference_abp PPG names channel 'PPG', the PPG the output is reconstructed from"
    )
    with pytest.raises(DataError) as err:
        reconstruct_file(ckpt, recording, "/dev/null", {"fs": FS})
    assert str(err.value).startswith("out /dev/null: /dev/null is a device or other special")
    result = run_cli(
        "reconstruct", "--checkpoint", ckpt, recording, "--out", tmp_path / "abp", "--fs", FS,
        "--reference-abp", "PPG",
    )  # fmt: skip
    assert result.exit_code == 1 and "--reference-abp PPG names channel 'PPG'" in result.output


def test_report_names_force_and_out_dir_as_parameters(ckpt: Path, synth_file: Path, tmp_path: Path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("an earlier report")
    with pytest.raises(DataError) as err:
        check_report_outputs(out, [ckpt], synth_file, None, force=False)
    assert str(err.value) == (
        f"{out} already holds a report; pass force=True to replace it, or choose another out_dir"
    )


def test_run_demo_names_force_as_a_parameter(tmp_path: Path):
    from innpar_freia.demo import run_demo

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError) as err:
        run_demo(tmp_path)
    assert str(err.value) == f"{tmp_path} is not empty; pass force=True to replace the demo in it"
    result = run_cli("demo", "--out", tmp_path)
    assert result.exit_code == 1
    assert "is not empty; pass --force to replace the demo in it" in result.output


def test_run_experiment_names_the_variants_setting_in_either_spelling():
    """run_experiment is called from Python and by the runner's script (in the command
    line's spelling): training's "(--lr)" or "(train.lr)" is a variant's setting in both."""
    from innpar_freia.experiments import in_config_terms

    for spelled in ("--lr", "train.lr"):
        message = f"loss became nan: training stopped. Try a lower learning rate ({spelled})"
        assert in_config_terms(message).endswith("learning rate (the variant's train.lr)")


def test_reading_a_recording_names_fs_as_a_parameter(tmp_path: Path):
    from innpar_freia.data.recordings import read_csv

    path = write_csv(tmp_path / "r.csv", {"PPG": np.ones(10), "ABP": np.ones(10)})
    with pytest.raises(DataError) as err:
        read_csv(path)
    assert str(err.value) == f"{path}: the sampling rate is unknown; give it with fs=HZ"
    with pytest.raises(DataError, match=r"give it with --fs HZ$"), cli_spelling():
        read_csv(path)


def test_import_recordings_names_its_parameters(folder: Path, tmp_path: Path):
    from innpar_freia.data.recording_importers import import_recordings

    ppg, abp = pulse_recording(16, seed=1)
    taken = tmp_path / "taken.h5"
    taken.write_text("")
    with pytest.raises(DataError) as err:
        import_recordings("csv", folder, taken)
    assert str(err.value) == (
        f"output file {taken} already exists; choose another name or use overwrite=True"
    )
    no_ppg = _csv(tmp_path / "x" / "r.csv", {"X": ppg, "ABP": abp})
    with pytest.raises(DataError) as err:
        import_recordings("csv", no_ppg, tmp_path / "a.h5")
    assert str(err.value).endswith("its channels are: X, ABP. Name it with ppg_channel='NAME'")
    with pytest.raises(DataError) as err:
        import_recordings("csv", folder, tmp_path / "a.h5", ppg_channel="ABP", abp_channel="ABP")
    # (The command line refuses the two options naming one channel before this.)
    assert str(err.value).endswith("name two different channels with ppg_channel and abp_channel")
    rateless = _csv(tmp_path / "y" / "r.csv", {"PPG": ppg, "ABP": abp}, time=False)
    with pytest.raises(DataError) as err:
        import_recordings("csv", rateless, tmp_path / "a.h5")
    assert str(err.value) == f"{rateless}: the sampling rate is unknown; give it with input_fs=HZ"
    ppg60, abp60 = pulse_recording(60, seed=2)
    long = _csv(tmp_path / "w" / "r.csv", {"PPG": ppg60, "ABP": abp60})
    with pytest.raises(DataError) as err:
        import_recordings("csv", long, tmp_path / "a.h5", window_s=0.5)
    assert str(err.value).endswith("use longer windows (window_s))")
    three = _csv(tmp_path / "z" / "r.csv", {"PLETH": ppg60, "ABP": abp60, "ART": abp60})
    report = import_recordings(
        "csv", three, tmp_path / "b.h5", ppg_channel="ABP", abp_channel="ART"
    )
    said = [w for w in report.warnings if "PPG channel" in w]
    assert said and said[0].endswith(
        "name the PPG with ppg_channel='PLETH' (its channels: PLETH, ABP, ART)"
    )


def test_data_import_through_the_cli_still_names_its_options(folder: Path, tmp_path: Path):
    ppg, abp = pulse_recording(16, seed=1)
    taken = tmp_path / "taken.h5"
    taken.write_text("")
    result = run_cli("data", "import", "csv", folder, "--out", taken)
    assert result.exit_code == 1 and "choose another name or use --force" in result.output
    no_ppg = _csv(tmp_path / "x" / "r.csv", {"X": ppg, "ABP": abp})
    result = run_cli("data", "import", "csv", no_ppg, "--out", tmp_path / "a.h5")
    assert result.exit_code == 1 and "Name it with --ppg-channel\n" in result.output
    rateless = _csv(tmp_path / "y" / "r.csv", {"PPG": ppg, "ABP": abp}, time=False)
    result = run_cli("data", "import", "csv", rateless, "--out", tmp_path / "a.h5")
    assert result.exit_code == 1 and "give it with --input-fs HZ" in result.output


def test_window_imports_name_fs_and_the_subject_options_as_parameters(tmp_path: Path):
    from innpar_freia.data.innpar_npy import import_innpar_npy

    def layout(root: Path, name: str) -> Path:
        t = np.arange(625) / FS
        for kind, x in (("ppg", np.sin(2 * np.pi * t)), ("abp", 90 + 20 * np.sin(2 * np.pi * t))):
            (root / kind).mkdir(parents=True, exist_ok=True)
            np.save(root / kind / f"{name}.npy", x)
        return root

    with pytest.raises(DataError) as err:
        import_innpar_npy(layout(tmp_path / "a", "x"), tmp_path / "a.h5")
    assert str(err.value).endswith(
        "give subject_pattern (a regex with a 'subject' group) or subject_map"
    )
    result = run_cli("data", "import", "innpar-npy", tmp_path / "a", "--out", tmp_path / "c.h5")
    assert result.exit_code == 1
    assert "give --subject-pattern (a regex with a 'subject' group) or --subject-map" in (
        result.output
    )
    report = import_innpar_npy(layout(tmp_path / "b", "s1_000000"), tmp_path / "b.h5")
    assert report.warnings[0].endswith("(pass fs=HZ if the windows are at another rate)")
    from scipy.io import savemat

    from innpar_freia.data.bp_benchmark import import_bp_benchmark

    t = np.arange(625) / FS
    phase = np.arange(4)[:, None]
    bpb = tmp_path / "bpb"
    bpb.mkdir()
    savemat(
        bpb / "signal_fold_0.mat",
        {
            "patient": np.vstack([f"p{i % 2}" for i in range(4)]),
            "signal": np.sin(2 * np.pi * 1.3 * t + phase),
            "abp_signal": 90 + 25 * np.sin(2 * np.pi * 1.3 * t + phase),
        },
    )
    report = import_bp_benchmark(bpb, tmp_path / "d.h5")
    assert report.warnings[0].endswith("(pass fs=HZ if the windows are at another rate)")


def test_split_file_names_folds_as_a_parameter(tmp_path: Path):
    from innpar_freia.data.splits import split_file
    from innpar_freia.data.synthetic import synthesize_dataset

    path = synthesize_dataset(tmp_path / "s.h5", subjects=3, minutes=0.2, folds=0)
    with pytest.raises(DataError) as err:
        synthesize_dataset(path, subjects=3, minutes=0.2, folds=0)
    assert str(err.value).endswith("choose another name or use overwrite=True")
    with pytest.raises(DataError) as err:
        split_file(path, folds=None, test_fold=None)
    assert str(err.value) == (
        f"{path} has no folds on every window to keep; assign them with folds=K"
    )
    result = run_cli("data", "split", path, "--keep-folds")
    assert "no folds on every window to keep; assign them with --folds K" in result.output


def _csv(path: Path, columns: dict[str, np.ndarray], time: bool = True) -> Path:
    """A CSV recording at FS (with its time column unless ``time`` is False), its folder made."""
    path.parent.mkdir(exist_ok=True)
    n = len(next(iter(columns.values())))
    return write_csv(path, {"t": np.arange(n) / FS, **columns} if time else columns)


def test_recording_figure_names_its_parameters(tmp_path: Path):
    import json

    from innpar_freia.figures import predictions_figure, recording_figure
    from innpar_freia.predictions import write_predictions

    ppg, abp = pulse_recording(16, seed=1)
    src = _csv(tmp_path / "in.csv", {"PPG": ppg, "ABP": abp})
    rec = _csv(tmp_path / "abp.csv", {"ABP": abp})
    out = tmp_path / "f.png"

    def refused(*args, **kwargs) -> str:
        with pytest.raises(DataError) as err:
            recording_figure(*args, **kwargs)
        assert "--" not in str(err.value)
        return str(err.value)

    assert (
        refused(rec, tmp_path / "no.csv", out) == f"source recording not found: {tmp_path}/no.csv"
    )
    assert refused(src, src, out).endswith("as both the reconstruction and its source")
    no_ppg = _csv(tmp_path / "x.csv", {"X": ppg, "ABP": abp})
    assert refused(rec, no_ppg, out).endswith("Name it with channel='NAME'")
    ppg_out = _csv(tmp_path / "ppg.csv", {"PPG": ppg})
    assert "(abp2ppg): reference_abp draws the ABP" in refused(
        ppg_out, src, out, reference_abp="ABP"
    )
    summary = tmp_path / "abp.summary.json"
    summary.write_text(json.dumps({"direction": "ppg2abp", "channel": "PPG", "fs": FS / 2}))
    assert refused(rec, src, out, direction="abp2ppg").endswith("drop direction")
    rateless = _csv(tmp_path / "rateless.csv", {"PPG": ppg, "ABP": abp}, time=False)
    assert refused(rec, rateless, out, fs=FS).endswith("; drop fs")
    summary.write_text(json.dumps({"channel": "PPG"}))
    assert refused(rec, src, out, channel="ABP").endswith("not 'ABP': drop channel")
    preds = write_predictions(
        tmp_path / "p.h5", fs=FS, window_id=["w0"], subject=["s0"], prediction=np.ones((1, 625)),
        reference=np.ones((1, 625)),
    )  # fmt: skip
    with pytest.raises(DataError) as err:
        predictions_figure(preds, "bland-altman", out, protocol="calibrated")
    assert str(err.value).endswith("evaluate with calibration='offset-scale' or 'offset'")
    result = run_cli("plot", "recording", rec, "--input", tmp_path / "no.csv", "--out", out)
    assert result.exit_code == 1 and "--input recording not found" in result.output
    result = run_cli("plot", "bland-altman", preds, "--out", out, "--protocol", "calibrated")
    assert result.exit_code == 1
    assert "evaluate with --calibration offset-scale or offset" in result.output


def test_run_experiment_names_the_extra_evals_split_not_a_parameter(
    synth_file: Path, tmp_path: Path
):
    """run_experiment scores the splits its experiment file names: an evaluation error named
    evaluate's split='all' (a parameter run_experiment lacks), and the runner's script
    --split all (an option it lacks). Both name the extra_eval's split setting."""
    import importlib.util

    from click.testing import CliRunner

    from innpar_freia.data.store import read_info, write_assignments
    from innpar_freia.data.synthetic import synthesize_dataset
    from innpar_freia.experiments import run_experiment

    # Windows that no split column or fold assigns: its split "test" has nothing to score.
    other = synthesize_dataset(tmp_path / "other.h5", subjects=4, minutes=0.5, seed=7, folds=0)
    write_assignments(other, np.array([""] * read_info(other).n_windows), None)
    cfg = tmp_path / "mini.toml"
    cfg.write_text(
        f'name = "mini"\n[data]\nfile = "{synth_file}"\n[protocol]\ntest_folds = [0]\n'
        'seeds = [1]\nevaluate = ["test"]\ncheckpoints = ["last"]\nreference = "a"\n'
        '[base]\npreset = "tiny"\ntrain = { epochs = 1, batch_size = 32 }\n'
        '[[variants]]\nname = "a"\n'
        f'[[extra_eval]]\nname = "other"\nfile = "{other}"\nsplit = "test"\n'
    )
    with pytest.raises(DataError) as err:
        run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None)
    said = "score every window with extra_eval 'other' split = \"all\", or assign splits"
    assert said in str(err.value) and "split='all'" not in str(err.value)
    script_path = Path(__file__).parents[1] / "experiments" / "run.py"
    spec = importlib.util.spec_from_file_location("run_script", script_path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args = [str(cfg), "--out", str(tmp_path / "out"), "--device", "cpu", "--quiet"]
    result = CliRunner().invoke(script.main, args)
    assert result.exit_code == 1 and said in result.output and "--split" not in result.output


def test_run_experiment_names_the_protocols_split_and_an_extra_eval(tmp_path: Path):
    """The [data] file's test split scored by the protocol, empty: evaluate's advice named
    split='all' and data, which run_experiment has not."""
    from innpar_freia.data.store import read_info, write_assignments
    from innpar_freia.data.synthetic import synthesize_dataset
    from innpar_freia.experiments import run_experiment

    data = synthesize_dataset(tmp_path / "d.h5", subjects=6, minutes=0.5, seed=3, folds=0)
    split = np.array([str(s) for s in read_info(data).split])
    split[split == "test"] = "val"
    write_assignments(data, split, None)
    cfg = tmp_path / "mini.toml"
    cfg.write_text(
        f'name = "mini"\n[data]\nfile = "{data}"\n[protocol]\nseeds = [1]\nevaluate = ["test"]\n'
        'checkpoints = ["last"]\nreference = "a"\n[base]\npreset = "tiny"\n'
        'train = { epochs = 1, batch_size = 32 }\n[[variants]]\nname = "a"\n'
    )
    with pytest.raises(DataError) as err:
        run_experiment(cfg, tmp_path / "out", device="cpu", log=lambda s: None)
    assert str(err.value) == (
        f"{data}: the test split is empty: this checkpoint was trained on this file, so "
        'protocol evaluate "all" would score its training windows; hold out windows with '
        "'innpar data split' and train on it again, or score another data set (an "
        "extra_eval's file)"
    )


def test_calibrate_recording_names_its_own_parameters():
    """Its messages told a Python caller of calibrate_recording to choose another time with
    --calibration-at, a longer --calibration-seconds or --calibration SBP/DBP: options of a
    command it had not run. It is told start_s, duration_s and cuff; the command line's
    words are the same as before."""
    from contextlib import nullcontext

    from innpar_freia.recording_bp import calibrate_recording
    from tests.helpers import pulse_train

    pred = pulse_train(60.0, FS, 70.0, 10.0)
    gap = pred.copy()
    gap[: round(30 * FS)] = np.nan
    head = "no reconstructed beats between 0 and 20 s to calibrate with; the recording has a gap "
    for spelled, expected in (
        (False, "there: choose another time with start_s (or a longer duration_s) (the first "
         "beats start at 31 s: start_s=31)"),
        (True, "there: choose another time with --calibration-at (or a longer "
         "--calibration-seconds) (the first beats start at 31 s: --calibration-at 31)"),
    ):  # fmt: skip
        with pytest.raises(DataError) as err, cli_spelling() if spelled else nullcontext():
            calibrate_recording(gap, FS, 0.0, 20.0, cuff=(120.0, 80.0))
        assert str(err.value) == head + expected
    late = pulse_train(60.0, FS, 100.0, 20.0)
    late[: round(40 * FS)] = np.nan
    with pytest.raises(DataError) as err:
        calibrate_recording(pred, FS, 0.0, 20.0, reference=late)
    assert re.search(
        r"no valid beats between 0 and 20 s; choose another time with start_s \(the first "
        r"beats start at 4\d(\.\d)? s: start_s=4\d(\.\d)?\)$",
        str(err.value),
    ), str(err.value)
    with pytest.raises(DataError) as err:
        calibrate_recording(pred, FS, 0.0, 20.0, reference=np.full_like(pred, 80.0))
    assert str(err.value).endswith("calibrate with a cuff reading (cuff=(SBP, DBP)) instead")
    with pytest.raises(DataError) as err, cli_spelling():
        calibrate_recording(pred, FS, 0.0, 20.0, reference=np.full_like(pred, 80.0))
    assert str(err.value).endswith("calibrate with a cuff reading (--calibration SBP/DBP) instead")


def test_reconstruct_file_names_the_calibration_settings_of_its_options(ckpt: Path, tmp_path):
    """reconstruct_file takes the calibration's settings in its options (calibration_at,
    calibration_seconds, calibration): its messages named --calibration-at and the other
    options to a Python caller. The command line still names them."""
    ppg, abp = pulse_recording(30, seed=2)
    ppg[: round(12 * FS)] = np.nan  # the PPG starts 12 s in: no beats to calibrate with before
    t = np.arange(ppg.size) / FS
    gap = write_csv(tmp_path / "gap.csv", {"t": t, "PPG": ppg, "ABP": abp})
    flat = write_csv(tmp_path / "flat.csv", {"t": t, "PPG": ppg, "ABP": np.full_like(abp, 80.0)})
    cuff = {"fs": FS, "calibration": "120/80", "calibration_seconds": 5.0}
    with pytest.raises(DataError) as err:
        reconstruct_file(ckpt, gap, tmp_path / "a.csv", cuff)
    message = str(err.value)
    said = "choose another time with calibration_at (or a longer calibration_seconds) in options"
    assert said in message
    assert re.search(r"beats start at (1\d\.?\d?) s: calibration_at=\1 in options\)$", message)
    assert "--" not in message
    reference = {"fs": FS, "calibration": "reference", "reference_abp": "ABP"}
    with pytest.raises(DataError) as err:
        reconstruct_file(ckpt, flat, tmp_path / "b.csv", reference)
    assert str(err.value).endswith(
        "calibrate with a cuff reading (calibration='SBP/DBP' in options) instead"
    )
    args = ("reconstruct", "--checkpoint", ckpt, "--fs", FS, "--out", tmp_path / "c.csv")
    result = run_cli(*args, gap, "--calibration", "120/80", "--calibration-seconds", 5)
    assert result.exit_code == 1
    assert "choose another time with --calibration-at (or a longer --calibration-seconds)" in (
        result.output
    )
    assert re.search(r"beats start at (1\d\.?\d?) s: --calibration-at \1\)", result.output)
    result = run_cli(*args, flat, "--calibration", "reference", "--reference-abp", "ABP")
    assert result.exit_code == 1
    assert "calibrate with a cuff reading (--calibration SBP/DBP) instead" in result.output


def test_reconstruct_file_names_the_channel_setting_of_its_options(ckpt: Path, tmp_path):
    """A channel picked by its name that holds no signal: a Python caller was told to name
    the PPG with --ppg-channel; it is told channel in options (the command line unchanged)."""
    n = 2000
    rows = "".join(f"{i / 100:.2f},97,{np.sin(i / 10.0):.4f}\n" for i in range(n))
    path = tmp_path / "monitor.csv"
    path.write_text("t,SpO2,wave\n" + rows)
    with pytest.raises(DataError) as err:
        reconstruct_file(ckpt, path, tmp_path / "o.csv")
    assert str(err.value).endswith(
        "; it was picked by its name: if one of wave is the PPG, name it with channel in options"
    )
    result = run_cli("reconstruct", "--checkpoint", ckpt, path, "--out", tmp_path / "o.csv")
    assert result.exit_code == 1
    assert "if one of wave is the PPG, name it with --ppg-channel" in result.output
