"""What a Hydra user expects of any Hydra app, tried as a user types it: their own configs, relative paths,
Hydra's logs and flags, and the `kdgat` command's manners. (On a real cluster: tests/cluster.)"""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import kdgat, run_train

pytestmark = pytest.mark.slow  # most of them train, each in its own process

TINY = ("dataset.synthetic.frames=20000", "train.max_epochs=1")
LOCAL = ("hydra/launcher=kdgat_chain", "hydra.launcher.cluster=local")


def user_configs(folder: Path) -> Path:
    """A user's own config dir: a pipeline written as a list of presets, and a dataset of their own."""
    conf = folder / "myconf"
    (conf / "pipeline").mkdir(parents=True)
    (conf / "dataset").mkdir()
    (conf / "pipeline" / "quick.yaml").write_text("name: quick\npresets: [autoencoder, curriculum]\nstages: {}\n")
    (conf / "dataset" / "mycan.yaml").write_text(
        "name: mycan\ndescription: my own capture\nsource: null\npath: ${paths.data}/mycan\nsynthetic: null\n")
    return conf


@pytest.fixture(scope="module")
def mycan(tmp_path_factory) -> Path:
    """A folder holding the user's dataset `mycan` (made with kdgat synth, like can-train-and-test)."""
    from kdgat.data import synth

    root = tmp_path_factory.mktemp("userdata")
    synth.generate(root / "data" / "mycan", like="set_01", frames=20_000, seed=2, progress=False)
    return root


def test_a_users_own_pipeline_and_dataset_run_in_process(mycan, tmp_path):
    shutil.copytree(mycan / "data", tmp_path / "data")
    conf = user_configs(tmp_path)
    help_text = run_train("--config-dir", str(conf), "--help", cwd=tmp_path, timeout=60).stdout
    assert "quick" in help_text and "mycan" in help_text
    out = run_train("--config-dir", str(conf), "pipeline=quick", "dataset=mycan", "train.max_epochs=1",
                    cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "experimentruns" / "mycan" / "curriculum" / "latest" / "done.json").is_file()


def test_a_users_own_pipeline_runs_locally_and_the_by_hand_line_keeps_the_config_dir(mycan, tmp_path):
    shutil.copytree(mycan / "data", tmp_path / "data")
    conf = user_configs(tmp_path)
    preview = run_train("-cd", str(conf), "pipeline=quick", "dataset=mycan", "hydra/launcher=kdgat_chain",
                        "hydra.launcher.dry_run=true", cwd=tmp_path, timeout=120)
    assert preview.returncode == 0, preview.stderr
    assert re.search(rf"the same stage by hand: .*train.py -cd {re.escape(str(conf))} pipeline=quick", preview.stdout)
    out = run_train("-cd", str(conf), "pipeline=quick", "dataset=mycan", "train.max_epochs=1", *LOCAL,
                    cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("completed after") == 2 and "curriculum epoch 1/1" in out.stdout


def test_unknown_names_are_checked_against_the_users_search_path(tmp_path):
    conf = user_configs(tmp_path)
    out = run_train("--config-dir", str(conf), "pipeline=quik", cwd=tmp_path, timeout=60)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("kdgat: error: unknown pipeline 'quik'; choose one of:") and "quick" in line \
        and "teacher" in line
    extra = tmp_path / "extra" / "dataset"
    extra.mkdir(parents=True)
    (extra / "other.yaml").write_text((conf / "dataset" / "mycan.yaml").read_text().replace("mycan", "other"))
    listed = run_train(f"hydra.searchpath=[file://{tmp_path / 'extra'}]", "dataset=nope", cwd=tmp_path, timeout=60)
    assert "unknown dataset 'nope'" in listed.stderr and "other" in listed.stderr


def test_relative_paths_mean_what_they_meant_where_typed_with_or_without_chdir(mycan, tmp_path):
    shutil.copytree(mycan / "data" / "mycan", tmp_path / "here" / "mine")
    out = run_train("pipeline=custom", "pipeline.presets=[autoencoder]", "dataset=set_01", "dataset.path=here/mine",
                    "paths.artifacts=runs", "hydra.job.chdir=true", "train.max_epochs=1", cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert list((tmp_path / "runs" / "set_01" / "autoencoder").glob("*/done.json"))
    assert not list((tmp_path / "outputs").rglob("runs"))  # nothing under the job's own folder


def test_messages_go_to_hydras_job_log_and_no_file_is_named_question_marks(tmp_path):
    out = run_train("pipeline=custom", "pipeline.presets=[autoencoder]", *TINY, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    (log,) = tmp_path.glob("outputs/*/*/train.log")
    text = log.read_text()
    assert "autoencoder epoch 1/1" in text and "stage autoencoder trained" in text and "\r" not in text
    quiet = run_train("pipeline=custom", "pipeline.presets=[autoencoder]", *TINY, "hydra/job_logging=disabled",
                      cwd=tmp_path, timeout=600)
    assert quiet.returncode == 0 and "already trained" not in quiet.stdout
    assert not list(tmp_path.rglob("???"))


def test_a_local_sweep_has_stage_logs_status_and_report(tmp_path):
    out = run_train("pipeline=curriculum_only", *TINY, *LOCAL, cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    (sweep,) = [p.parent for p in tmp_path.glob("multirun/*/*/manifest.json")]
    for stage in ("autoencoder", "curriculum"):
        log = sweep / "0" / stage / "train.log"
        assert f"{stage} epoch 1/1" in log.read_text()
        assert "Future Hydra versions will no longer change working directory" not in \
            (sweep / "0" / stage / ".submitit" / "log.out").read_text()
    status = kdgat("status", cwd=tmp_path)
    assert status.returncode == 0 and status.stdout.count("COMPLETED") == 2 and "(local)" in status.stdout
    assert "curriculum epoch 1/1" in kdgat("logs", str(sweep), "curriculum", cwd=tmp_path).stdout
    assert kdgat("report", cwd=tmp_path).returncode == 0


def test_kdgat_cancel_stops_a_running_local_sweep_and_what_needs_it(tmp_path):
    """Launched as a script's background command is (`cmd &` without job control): ignoring SIGINT."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    run = subprocess.Popen([sys.executable, str(ROOT / "train.py"), "pipeline=curriculum_only", *TINY[:1],
                            "train.max_epochs=3", "train.slow_epoch_s=30", *LOCAL], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            logs = list(tmp_path.glob("multirun/*/*/0/autoencoder/train.log"))
            if logs and "epoch 1/3" in logs[0].read_text():
                break
            time.sleep(1)
        cancelled = kdgat("cancel", cwd=tmp_path)
        assert cancelled.returncode == 0, cancelled.stderr
        out, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 1 and "cancelled" in out
    status = kdgat("status", cwd=tmp_path).stdout
    assert re.search(r"autoencoder\s+\S+\s+CANCELLED", status) and re.search(r"curriculum\s+\S+\s+CANCELLED", status)


def test_an_in_process_rerun_of_finished_stages_reads_no_data(tmp_path):
    first = run_train("pipeline=custom", "pipeline.presets=[autoencoder]", *TINY, cwd=tmp_path, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    shutil.rmtree(tmp_path / "experimentruns" / "cache")  # the prepared graphs: reading the data would remake them
    again = run_train("pipeline=custom", "pipeline.presets=[autoencoder]", *TINY, cwd=tmp_path, timeout=600)
    assert again.returncode == 0 and "already trained" in again.stdout
    assert not (tmp_path / "experimentruns" / "cache").exists()


def test_glob_sweeps_and_the_short_info_flag_work(tmp_path):
    out = run_train("-m", "pipeline=teacher", "dataset=glob(set_0*)", "hydra/launcher=kdgat_chain",
                    "hydra.launcher.dry_run=true", cwd=tmp_path, timeout=120)
    assert "Traceback" not in out.stderr and "ConfigLoader" not in out.stderr
    assert "dataset set_01 not found" in out.stderr  # the glob expanded; the planner looked for the data
    info = run_train("-i", "plugins", cwd=tmp_path, timeout=60)
    assert info.returncode == 0 and "KdgatChainLauncher" in info.stdout


def test_a_dry_run_or_a_refused_launch_leaves_no_sweep_folder(tmp_path):
    dry = run_train("pipeline=teacher", *TINY[:1], "hydra/launcher=kdgat_chain", "hydra.launcher.dry_run=true",
                    cwd=tmp_path, timeout=120)
    assert dry.returncode == 0, dry.stderr
    refused = run_train("resources.walltime=abc", "hydra/launcher=kdgat_chain", cwd=tmp_path, timeout=120)
    assert refused.returncode == 1
    assert not (tmp_path / "multirun").exists()


def test_an_unknown_device_is_refused(tmp_path):
    out = run_train("pipeline=custom", "pipeline.presets=[autoencoder]", *TINY, "train.device=gpu",
                    cwd=tmp_path, timeout=120)
    assert out.returncode == 1 and "train.device='gpu'; use one of auto, cuda, cpu" in out.stderr


def test_the_kdgat_commands_manners(tmp_path):
    assert re.fullmatch(r"kdgat \S+\n", kdgat("--version", cwd=tmp_path).stdout)
    for command in ("status", "cancel", "report", "logs", "synth", "pipelines"):
        page = kdgat(command, "--help", cwd=tmp_path).stdout
        assert page.split("\n\n")[1].strip(), f"kdgat {command} --help has no description"
    (tmp_path / "d" / "x").mkdir(parents=True)
    synth = kdgat("synth", "--like", "hcrl_sa", "--out", "d", "--quiet", cwd=tmp_path)
    assert synth.returncode == 1 and "give --overwrite to replace it" in synth.stderr
    help_text = run_train("--help", cwd=tmp_path, timeout=60).stdout
    assert "_common" not in help_text and "preset: autoencoder" in help_text


def test_status_without_slurms_commands_says_so(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "manifest.json").write_text(json.dumps({"version": 2, "sweep_dir": str(sweep), "submitted": "",
                                                     "cluster": "slurm", "chains": [{"num": 0, "overrides": [],
                                                     "stages": [{"stage": "a", "action": "submitted",
                                                                 "job_id": "7"}]}]}))
    env = {"PATH": os.path.dirname(os.__file__)}  # no sacct, squeue or scontrol anywhere on it
    out = kdgat("status", str(sweep), cwd=tmp_path, env=env)
    assert out.returncode == 1 and "none of SLURM's commands (sacct, squeue, scontrol)" in out.stderr
