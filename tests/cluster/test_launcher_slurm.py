"""The kdgat_chain launcher against a real SLURM cluster (CI starts scripts/local-slurm.sh).

Tests follow their own job ids, poll with deadlines, and ask sacct about
finished jobs (scontrol forgets them after MinJobAge).
"""

import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

from conftest import (
    attempt_states,
    guards,
    cancel,
    job_ids,
    kdgat,
    on_slurm,
    queued_ids,
    run_app,
    run_train,
    scontrol,
    states,
    statuses,
    synth,
)
from hydra_plugins.kdgat_chain_launcher import read_manifest


@pytest.mark.parametrize("overrides, expected", [
    ([], {"autoencoder": ("08:00:00", "96G"), "curriculum": ("12:00:00", "128G"), "fusion": ("10:00:00", "96G")}),
    (["resources.walltime=02:00:00", "resources.mem=64G"],
     {"autoencoder": ("02:00:00", "64G"), "curriculum": ("02:00:00", "64G"), "fusion": ("02:00:00", "64G")}),
    (["resources.mem=64G", "pipeline.stages.curriculum.resources.mem=192G",
      "pipeline.stages.fusion.resources.walltime='30'", "pipeline.stages.fusion.resources.gpus=0"],
     {"autoencoder": ("08:00:00", "64G"), "curriculum": ("12:00:00", "192G"), "fusion": ("00:30:00", "64G")}),
])
@on_slurm
def test_queued_jobs_carry_the_planned_resources_and_dependencies(tmp_path, overrides, expected):
    sweep = tmp_path / "sweep"
    out = run_train("pipeline=teacher", *overrides, "hydra/launcher=kdgat_chain", f"hydra.sweep.dir={sweep}",
                    "+hydra.launcher.additional_parameters.hold=true", cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    ids = job_ids(sweep)
    try:
        for (_, stage), job in ids.items():
            info = scontrol(job)
            walltime, mem = expected[stage]
            assert info["TimeLimit"] == walltime, stage
            assert info["MinMemoryNode"] == mem, stage
            assert info["NumCPUs"] == "16" and info["JobName"] == f"{stage}_synthetic"
            gpus = "0" if stage == "fusion" and "pipeline.stages.fusion.resources.gpus=0" in overrides else "1"
            assert ("gpu:1" in info.get("TresPerNode", "")) == (gpus == "1"), info.get("TresPerNode")
        deps = {stage: scontrol(job)["Dependency"] for (_, stage), job in ids.items()}
        assert deps["autoencoder"] == "(null)"
        assert re.fullmatch(rf"afterok:{ids[(0, 'autoencoder')]}\(\w+\)", deps["curriculum"])
        assert re.fullmatch(rf"afterok:{ids[(0, 'autoencoder')]}\(\w+\),afterok:{ids[(0, 'curriculum')]}\(\w+\)",
                            deps["fusion"])
        guard = guards(tmp_path / "sweep")
        assert f"scancel {' '.join(guard + list(ids.values()))}: the guards first" in out.stdout
    finally:
        cancel(list(ids.values()))


@on_slurm
@pytest.mark.parametrize("args, chains", [
    (["pipeline=teacher", "dataset=hcrl_sa", "hydra/launcher=kdgat_chain"], ["hcrl_sa"]),
    (["-m", "pipeline=teacher", "dataset=hcrl_sa,set_01", "hydra/launcher=kdgat_chain"], ["hcrl_sa", "set_01"]),
    (["-m", "pipeline=teacher", "dataset=hcrl_sa,set_01", "hydra/launcher=kdgat_chain", "hydra.launcher.array=false"],
     ["hcrl_sa", "set_01"]),
    (["-m", "pipeline=teacher", "dataset=hcrl_sa,hcrl_ch,set_01,set_02,set_03,set_04", "hydra/launcher=kdgat_chain"],
     ["hcrl_sa", "hcrl_ch", "set_01", "set_02", "set_03", "set_04"]),
])
def test_the_mission_commands_submit_one_chain_per_dataset(tmp_path, args, chains):
    """The exact commands of the guide: no -m for one chain, -m for a sweep of independent chains
    (as job arrays paired task by task, or one job per stage with the switch off)."""
    for name in chains:
        synth(tmp_path / "data" / name, like=name)
    # held jobs never run: a launcher that waited on them would not return (timeout); speed is bench/submit.py's
    out = run_train(*args, "+hydra.launcher.additional_parameters.hold=true", cwd=tmp_path,
                    env={"KDGAT_DATA": str(tmp_path / "data")}, timeout=60)
    assert out.returncode == 0, out.stderr
    (sweep,) = (tmp_path / "multirun").glob("*/*")
    ids = job_ids(sweep)
    try:
        assert sorted({num for num, _ in ids}) == list(range(len(chains)))
        arrays = len(chains) > 1 and "hydra.launcher.array=false" not in args
        assert len({i.split("_")[0] for i in ids.values()}) == (3 if arrays else 3 * len(chains))
        for num, name in enumerate(chains):
            gat, fusion = scontrol(ids[(num, "curriculum")]), scontrol(ids[(num, "fusion")])
            if arrays:  # task num of each stage's array, waiting on task num of the arrays before it
                assert ids[(num, "curriculum")].endswith(f"_{num}") and gat["ArrayTaskId"] == str(num)
                assert gat["JobName"] == "curriculum_array"
                vgae_array = ids[(num, "autoencoder")].split("_")[0]
                assert fusion["Dependency"].startswith(f"aftercorr:{vgae_array}_*(")
            else:
                assert gat["JobName"] == f"curriculum_{name}"
                assert fusion["Dependency"].startswith(f"afterok:{ids[(num, 'autoencoder')]}(")
    finally:
        cancel(sorted({i.split("_")[0] for i in ids.values()}))


@on_slurm
def test_generic_app_chain_runs_in_order_and_exits_zero(tmp_path):
    out = run_app("hydra/launcher=kdgat_chain", f"out={tmp_path}", f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ids = job_ids(tmp_path / "sweep")
    assert set(states(list(ids.values())).values()) == {"COMPLETED"}
    assert (tmp_path / "x-second.done").read_text().split() == ["x-first.done"]
    assert (tmp_path / "x-third.done").read_text().split() == ["x-first.done", "x-second.done"]
    stage_dir = tmp_path / "sweep" / "0" / "second"
    assert (stage_dir / ".hydra" / "config.yaml").is_file() and (stage_dir.parent / "config.yaml").is_file()
    script = read_manifest(tmp_path / "sweep").chains[0].stages[1].script_text
    assert "#SBATCH --time=10" in script and "#SBATCH --cpus-per-task=2" in script
    assert "#SBATCH --mem=2G" in script and "stage=second" in script


@on_slurm
def test_a_failing_stage_fails_its_job_and_cancels_its_dependents(tmp_path):
    out = run_app("hydra/launcher=kdgat_chain", f"out={tmp_path}", "fail=second", f"hydra.sweep.dir={tmp_path}/sweep",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr  # submitting worked; the failure happens in the queue
    ids = job_ids(tmp_path / "sweep")
    final = states(list(ids.values()))
    assert final == {ids[(0, "first")]: "COMPLETED", ids[(0, "second")]: "FAILED", ids[(0, "third")]: "CANCELLED"}
    assert not (tmp_path / "x-third.done").exists()


@on_slurm
def test_a_failing_setup_line_fails_the_job(tmp_path):
    out = run_app("hydra/launcher=kdgat_chain", f"out={tmp_path}", f"hydra.sweep.dir={tmp_path}/sweep",
                  "hydra.launcher.setup=[false,'echo after the failed line']", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ids = job_ids(tmp_path / "sweep")
    final = states(list(ids.values()))
    assert final[ids[(0, "first")]] == "FAILED" and final[ids[(0, "third")]] == "CANCELLED"
    assert not list(tmp_path.glob("*.done"))


@on_slurm
def test_a_request_slurm_can_never_run_is_refused_before_the_first_sbatch(tmp_path):
    before = queued_ids()
    out = run_app("hydra/launcher=kdgat_chain", f"out={tmp_path}", f"hydra.sweep.dir={tmp_path}/sweep",
                  "pipeline.stages.third.resources.gpus=3", cwd=tmp_path)
    assert out.returncode == 1
    (line,) = [x for x in out.stderr.strip().splitlines() if x.startswith("kdgat_chain: error")]
    assert "SLURM would never run job 0 stage third" in line and "gpus 3" in line and "nothing submitted" in line
    assert queued_ids() - before == set()
    assert not (tmp_path / "sweep" / "manifest.json").exists()


@on_slurm
def test_a_dry_run_refuses_a_request_over_the_partitions_limits_as_the_launch_would(tmp_path):
    out = run_app("hydra/launcher=kdgat_chain", "hydra.launcher.dry_run=true", f"out={tmp_path}",
                  f"hydra.sweep.dir={tmp_path}/sweep", "pipeline.stages.third.resources.mem=500G", cwd=tmp_path)
    assert out.returncode == 1 and "sbatch script" not in out.stdout
    assert "SLURM would never run job 0 stage third: mem 500G: the largest node of partition" in out.stderr
    assert not (tmp_path / "sweep").exists()


@on_slurm
def test_an_sbatch_refused_mid_chain_leaves_nothing_queued(tmp_path):
    """sbatch itself fails on the third real submission (a shim in front of the real one): the two
    jobs already queued are cancelled and the launcher says which stage and why."""
    shim = tmp_path / "bin" / "sbatch"
    shim.parent.mkdir()
    real = shutil.which("sbatch")
    shim.write_text(f"""#!/bin/bash
case " $* " in *" --test-only "*) exec {real} "$@";; esac
n=$(cat {tmp_path}/count 2>/dev/null || echo 0); echo $((n + 1)) > {tmp_path}/count
if [ "$n" -ge 2 ]; then echo "sbatch: error: Batch job submission failed: Socket timed out" >&2; exit 1; fi
exec {real} "$@"
""")
    shim.chmod(0o755)
    out = run_app("hydra/launcher=kdgat_chain", f"out={tmp_path}", f"hydra.sweep.dir={tmp_path}/sweep",
                  "hydra.launcher.setup=['sleep 10']", cwd=tmp_path,
                  env={"PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"})
    assert out.returncode == 1
    line = out.stderr.strip().splitlines()[-1]  # sbatch's own complaint may come before it
    assert line.startswith("kdgat_chain: error: job 0: sbatch refused stage third")
    assert "Socket timed out" in line and "cancelled what this submission had queued" in line
    submitted = re.search(r"had queued: ([\d ]+)$", line).group(1).split()
    assert len(submitted) == 2
    assert set(states(submitted, deadline_s=120).values()) == {"CANCELLED"}
    assert not (tmp_path / "sweep" / "manifest.json").exists()


@on_slurm
def test_tiny_synthetic_teacher_chain_completes_on_the_cluster(tmp_path):
    out = run_train("pipeline=teacher", "dataset.synthetic.frames=20000", "train.max_epochs=1", "progress=false",
                    "hydra/launcher=kdgat_chain", f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    ids = job_ids(tmp_path / "sweep")
    assert set(states(list(ids.values()), deadline_s=600).values()) == {"COMPLETED"}
    runs = tmp_path / "experimentruns" / "synthetic"
    markers = {p.parent.parent.name: json.loads(p.read_text()) for p in runs.glob("*/*/done.json")
               if p.parent.name != "latest"}
    assert set(markers) == {"autoencoder", "curriculum", "fusion"}
    assert markers["fusion"]["inputs"]["gat"]["fingerprint"] == markers["curriculum"]["fingerprint"]
    assert markers["fusion"]["slurm_job"] == ids[(0, "fusion")]
    # The same command again: every stage is found done by its fingerprint, nothing is submitted; a stage
    # trained by other code is reused, and the table says so.
    vgae_marker = next(p for p in runs.glob("autoencoder/*/done.json") if p.parent.name != "latest")
    vgae_marker.write_text(json.dumps({**markers["autoencoder"], "code": {"commit": "0" * 40, "dirty": False}}))
    again = run_train("pipeline=teacher", "dataset.synthetic.frames=20000", "train.max_epochs=1", "progress=false",
                      "hydra/launcher=kdgat_chain", f"hydra.sweep.dir={tmp_path}/sweep2", cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "0 jobs submitted" in again.stdout and again.stdout.count("skipped (done)") == 3
    assert "trained at commit 0000000000, code is now" in again.stdout
    # A changed VGAE setting changes the VGAE's fingerprint and so those of everything downstream: all three run.
    changed = run_train("pipeline=teacher", "dataset.synthetic.frames=20000", "train.max_epochs=1", "progress=false",
                        "pipeline.stages.autoencoder.lr=0.002", "hydra/launcher=kdgat_chain",
                        f"hydra.sweep.dir={tmp_path}/sweep3", "+hydra.launcher.additional_parameters.hold=true",
                        cwd=tmp_path, timeout=120)
    assert changed.returncode == 0, changed.stderr
    cancel(list(job_ids(tmp_path / "sweep3").values()))
    assert statuses(changed.stdout) == {"autoencoder": "submitted", "curriculum": "submitted", "fusion": "submitted"}


@on_slurm
def test_snapshot_runs_the_code_as_submitted(tmp_path):
    """With snapshot=true the stages import the copy in the sweep, not the working tree."""
    out = run_app("hydra/launcher=kdgat_chain", "hydra.launcher.snapshot=true", f"out={tmp_path}",
                  f"hydra.sweep.dir={tmp_path}/sweep",
                  f"hydra.launcher.setup=['{sys.executable} -c \"import app; print(\\'APP_FROM\\', app.__file__)\"']",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    code = tmp_path / "sweep" / ".code"
    assert (code / "app.py").is_file() and (code / "conf" / "config.yaml").is_file()
    ids = job_ids(tmp_path / "sweep")
    assert set(states(list(ids.values())).values()) == {"COMPLETED"}
    log = Path(read_manifest(tmp_path / "sweep").chains[0].stages[0].log.replace("%j", ids[(0, "first")]))
    assert f"APP_FROM {code / 'app.py'}" in log.read_text()


@on_slurm
def test_resubmitting_submits_only_what_is_not_done(tmp_path):
    def submit(*args):
        out = run_app("hydra/launcher=kdgat_chain", f"out={tmp_path}", *args, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        return out

    failed = submit("fail=second", f"hydra.sweep.dir={tmp_path}/s1")
    ids = job_ids(tmp_path / "s1")
    assert states(list(ids.values()))[ids[(0, "third")]] == "CANCELLED"
    # Fixed: only second and third run again; first is reused, and second does not wait on a finished job.
    fixed = submit(f"hydra.sweep.dir={tmp_path}/s2")
    assert statuses(fixed.stdout) == {"first": "skipped (done)", "second": "submitted", "third": "submitted"}
    again = job_ids(tmp_path / "s2")
    assert scontrol(again[(0, "second")])["Dependency"] == "(null)"
    assert set(states([again[(0, "second")], again[(0, "third")]]).values()) == {"COMPLETED"}
    # Everything done: nothing is submitted.
    nothing = submit(f"hydra.sweep.dir={tmp_path}/s3")
    assert set(statuses(nothing.stdout).values()) == {"skipped (done)"} and "0 jobs submitted" in nothing.stdout
    # rerun=second forces it and what needs it.
    forced = submit(f"hydra.sweep.dir={tmp_path}/s4", "hydra.launcher.rerun=second")
    assert statuses(forced.stdout) == {"first": "skipped (done)", "second": "submitted", "third": "submitted"}
    forced_ids = job_ids(tmp_path / "s4")
    assert set(states([forced_ids[(0, "second")], forced_ids[(0, "third")]]).values()) == {"COMPLETED"}
    assert failed.stdout.count("submitted") >= 3


@on_slurm
def test_a_stale_finished_stage_is_submitted_again_and_then_attached_to(tmp_path):
    """The app names a stage `stale` (kdgat: its files are damaged): its existing marker does not make it
    done, the old marker is set aside, and a second submission attaches to the queued job."""
    (tmp_path / "x-first.done").write_text("\n")
    args = ("hydra/launcher=kdgat_chain", f"out={tmp_path}", "+pipeline.stages.first.stale='model.pt is damaged'",
            "+hydra.launcher.additional_parameters.hold=true")
    out = run_app(*args, f"hydra.sweep.dir={tmp_path}/s1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ids = job_ids(tmp_path / "s1")
    try:
        (row,) = [line for line in out.stdout.splitlines() if line.split()[:1] == ["first"]]
        assert "submitted; trained again: model.pt is damaged" in row
        assert not (tmp_path / "x-first.done").exists() and list(tmp_path.glob("x-first.done.rerun-*"))
        again = run_app(*args, f"hydra.sweep.dir={tmp_path}/s2", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert set(statuses(again.stdout).values()) == {"attached (queued)"}
        assert job_ids(tmp_path / "s2") == ids
    finally:
        cancel(list(ids.values()))


@on_slurm
def test_queued_stages_are_attached_to_and_shared_stages_submitted_once(tmp_path):
    held = run_app("hydra/launcher=kdgat_chain", f"out={tmp_path}", f"hydra.sweep.dir={tmp_path}/s1",
                   "+hydra.launcher.additional_parameters.hold=true", cwd=tmp_path)
    assert held.returncode == 0, held.stderr
    first_ids = job_ids(tmp_path / "s1")
    queued = set(first_ids.values())  # every job this test queued, cancelled at the end
    try:
        # The same chain again while the first is still queued: attach, never a duplicate.
        again = run_app("hydra/launcher=kdgat_chain", f"out={tmp_path}", f"hydra.sweep.dir={tmp_path}/s2",
                        cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert set(statuses(again.stdout).values()) == {"attached (queued)"}
        assert job_ids(tmp_path / "s2") == first_ids
        # A sweep whose two chains share every stage submits each stage once.
        sweep = run_app("-m", "hydra/launcher=kdgat_chain", f"out={tmp_path}", "tag=z", "+copy=1,2",
                        f"hydra.sweep.dir={tmp_path}/s3", "+hydra.launcher.additional_parameters.hold=true",
                        cwd=tmp_path)
        assert sweep.returncode == 0, sweep.stderr
        ids = job_ids(tmp_path / "s3")
        assert [ids[(1, s)] for s in ("first", "second", "third")] == [ids[(0, s)] for s in ("first", "second", "third")]
        assert "3 jobs submitted" in sweep.stdout
        queued.update(ids.values())
    finally:
        cancel(sorted(queued))


def without_sacct(tmp_path) -> dict:
    """An environment whose `sacct` fails the way it does on a cluster with accounting off."""
    fake = tmp_path / "nosacct"
    fake.mkdir(exist_ok=True)
    (fake / "sacct").write_text("#!/bin/sh\necho 'sacct: error: Slurm accounting storage is disabled' >&2\nexit 1\n")
    (fake / "sacct").chmod(0o755)
    return {"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}


@on_slurm
@pytest.mark.parametrize("accounting", ["sacct", "no sacct"])
def test_status_names_the_failed_stage_behind_a_cancelled_one(tmp_path, accounting):
    out = run_app("hydra/launcher=kdgat_chain", f"out={tmp_path}", "fail=second", f"hydra.sweep.dir={tmp_path}/s",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ids = job_ids(tmp_path / "s")
    states(list(ids.values()))
    env = without_sacct(tmp_path) if accounting == "no sacct" else None
    status = kdgat("status", str(tmp_path / "s"), cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    rows = {line.split()[1]: line for line in status.stdout.splitlines()[2:]}
    assert "COMPLETED" in rows["first"] and "FAILED" in rows["second"]
    assert "cancelled because second failed (exit 1, see" in rows["third"]
    assert str(tmp_path / "s" / "0" / "second") in rows["third"]
    logs = kdgat("logs", str(tmp_path / "s"), "second", cwd=tmp_path)
    assert "stage second was asked to fail" in logs.stdout


@on_slurm
def test_status_of_a_waiting_array_task_names_the_stage_it_waits_for(tmp_path):
    """squeue shows a pending array as one line (123_[0-1]) unless asked task by task (-r)."""
    out = run_app("-m", "hydra/launcher=kdgat_chain", f"out={tmp_path}", "tag=a,b", f"hydra.sweep.dir={tmp_path}/s",
                  "hydra.launcher.setup=['sleep 60']", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ids = job_ids(tmp_path / "s")
    try:
        assert "_" in ids[(0, "second")]
        deadline = time.monotonic() + 60  # the scheduler sets the reason Dependency on its next pass
        while True:
            status = kdgat("status", str(tmp_path / "s"), cwd=tmp_path)
            assert status.returncode == 0, status.stderr
            rows = [line for line in status.stdout.splitlines()[2:] if line.split()[1:2] == ["second"]]
            if all("waiting for first" in row for row in rows) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert len(rows) == 2 and all("waiting for first" in row for row in rows), status.stdout
    finally:
        cancel(sorted({i.split("_")[0] for i in ids.values()}))


@on_slurm
def test_cancel_a_stage_and_its_dependents_then_the_whole_sweep(tmp_path):
    out = run_app("-m", "hydra/launcher=kdgat_chain", f"out={tmp_path}", "tag=a,b", f"hydra.sweep.dir={tmp_path}/s",
                  "+hydra.launcher.additional_parameters.hold=true", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ids = job_ids(tmp_path / "s")
    try:
        part = kdgat("cancel", str(tmp_path / "s"), "--stage", "second", cwd=tmp_path)
        assert part.returncode == 0, part.stderr
        gone = states([ids[(c, s)] for c in (0, 1) for s in ("second", "third")], deadline_s=120)
        assert set(gone.values()) == {"CANCELLED"}
        queue = queued_ids()
        assert ids[(0, "first")] in queue and ids[(1, "first")] in queue
        everything = kdgat("cancel", str(tmp_path / "s"), cwd=tmp_path)
        assert everything.returncode == 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            queue = queued_ids()
            if not set(ids.values()) & queue:
                break
            time.sleep(0.5)
        assert not set(ids.values()) & set(queue)
    finally:
        cancel(list(ids.values()))


@on_slurm
def test_a_stage_that_reaches_its_walltime_is_requeued_and_resumes(tmp_path):
    """Walltime 3 min, signal 90 s before it, 20 s per epoch (a sleep after each epoch's checkpoint): the first run
    finishes three or four epochs and is signalled, checkpointed and requeued, the next ends the training at
    max_epochs (local cluster: cred_expire 30 s). 90 s leave a busy machine the time to start and finish an epoch."""
    out = run_train("pipeline=custom", "pipeline.presets=[autoencoder]", "dataset.synthetic.frames=20000",
                    "train.max_epochs=6", "train.slow_epoch_s=20", "progress=false", "resources.walltime='3'",
                    "resources.cpus=2", "resources.gpus=0", "hydra/launcher=kdgat_chain",
                    "hydra.launcher.signal_delay_s=90", f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    (job,) = job_ids(tmp_path / "sweep").values()
    assert states([job], deadline_s=900) == {job: "COMPLETED"}
    history = attempt_states(job)
    assert history.count("REQUEUED") >= 1 and history[-1] == "COMPLETED"
    log = (tmp_path / "experimentruns" / "slurm_runs" / "synthetic" / "autoencoder.log").read_text()
    resumed = [int(n) for n in re.findall(r"resuming after epoch (\d+) of 6", log)]
    started = [int(n) for n in re.findall(r"autoencoder epoch (\d+)/6", log)]
    assert resumed and started == [1, 2, 3, 4, 5, 6]  # each epoch once: every run starts after the last checkpoint
    metrics = tmp_path / "experimentruns" / "synthetic" / "autoencoder" / "latest" / "metrics.json"
    assert json.loads(metrics.read_text())["training"]["epochs_run"] == 6


@on_slurm
def test_shell_metacharacters_and_newlines_in_values_are_never_executed(tmp_path):
    odd = tmp_path / "a dir; with $(touch PWNED1) & spaces"
    odd.mkdir()
    out = run_app("hydra/launcher=kdgat_chain", f"out='{odd}'", f"hydra.sweep.dir='{odd}/sweep'",
                  f"+evil='x\ntouch {tmp_path}/PWNED2 `touch {tmp_path}/PWNED3`'", "name='n;touch PWNED4'",
                  cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ids = job_ids(odd / "sweep")
    assert set(states(list(ids.values())).values()) == {"COMPLETED"}
    assert (odd / "x-third.done").is_file()
    assert not list(tmp_path.rglob("PWNED*"))
