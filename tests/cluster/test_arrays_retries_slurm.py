"""The kdgat_chain launcher's sweeps on a real SLURM cluster: job arrays, and retries after running out of
memory or time (CI starts scripts/local-slurm.sh)."""

import time
from pathlib import Path

from conftest import (
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
)
from hydra_plugins.kdgat_chain_launcher import read_attempts, read_manifest


# ---------------------------------------------------------------------- job arrays (sweeps)

def submissions(sweep: Path) -> set:
    """The distinct SLURM submissions (an array counts once) of a sweep's manifest."""
    return {job.split("_")[0] for job in job_ids(sweep).values()}


@on_slurm
def test_a_six_chain_sweep_is_three_arrays_and_a_failure_stops_only_its_own_chain(tmp_path):
    tags = ["a", "b", "c", "d", "e", "f"]
    out = run_app("-m", "hydra/launcher=kdgat_chain", f"out={tmp_path}", f"tag={','.join(tags)}", "fail=first",
                  "fail_tag=c", f"hydra.sweep.dir={tmp_path}/s", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "18 jobs submitted in 3 submissions (3 arrays)" in out.stdout
    ids = job_ids(tmp_path / "s")
    assert len(submissions(tmp_path / "s")) == 3
    for num in range(6):  # chain num is task num of every stage's array
        assert all(ids[(num, s)].endswith(f"_{num}") for s in ("first", "second", "third"))
    final = states(list(ids.values()))
    failed = tags.index("c")
    assert final[ids[(failed, "first")]] == "FAILED"
    assert final[ids[(failed, "second")]] == final[ids[(failed, "third")]] == "CANCELLED"
    others = [final[ids[(num, s)]] for num in range(6) if num != failed for s in ("first", "second", "third")]
    assert set(others) == {"COMPLETED"}
    for tag in tags:
        if tag != "c":
            assert (tmp_path / f"{tag}-third.done").read_text().split() == [f"{tag}-first.done", f"{tag}-second.done"]
    status = kdgat("status", str(tmp_path / "s"), cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    rows = [line.split() for line in status.stdout.splitlines()[2:] if line.strip()]
    by = {(int(r[0]), r[1]): line for r, line in zip(rows, status.stdout.splitlines()[2:])}
    assert "FAILED" in by[(failed, "first")] and "cancelled because first failed" in by[(failed, "third")]
    assert "COMPLETED" in by[(0, "third")]
    logs = kdgat("logs", str(tmp_path / "s"), "first", "--chain", str(failed), cwd=tmp_path)
    assert "stage first was asked to fail" in logs.stdout
    # the stage's own folder shows its array's logs, as a single job's would
    assert (tmp_path / "s" / str(failed) / "first" / ".submitit" / f"{ids[(failed, 'first')]}_0_log.out").is_file()


@on_slurm
def test_chains_that_differ_fall_back_to_their_own_arrays_or_single_jobs(tmp_path):
    """a, b, c ask for 2G and d, e for 3G for their second stage; f asks for 3G too but its first stage
    is done, so its stages no longer line up with anyone's: 3 + 3 arrays and 2 single jobs."""
    (tmp_path / "f-first.done").write_text("\n")
    out = run_app("-m", "hydra/launcher=kdgat_chain", f"out={tmp_path}", "tag=a,b,c,d,e,f",
                  "+mem_of={a:2G,b:2G,c:2G,d:3G,e:3G,f:3G}", "pipeline.stages.second.resources.mem='${mem_of.${tag}}'",
                  "hydra.launcher.array_parallelism=1", f"hydra.sweep.dir={tmp_path}/s",
                  "+hydra.launcher.additional_parameters.hold=true", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ids = job_ids(tmp_path / "s")
    try:
        assert "17 jobs submitted in 8 submissions (6 arrays)" in out.stdout
        for nums, mem in (([0, 1, 2], "2G"), ([3, 4], "3G")):
            for stage in ("first", "second", "third"):
                assert len({ids[(n, stage)].split("_")[0] for n in nums}) == 1
                assert [ids[(n, stage)].split("_")[1] for n in nums] == [str(i) for i in range(len(nums))]
            job = scontrol(ids[(nums[0], "second")])
            assert job["ArrayTaskThrottle"] == "1" and job["MinMemoryNode"] == mem
            assert job["Dependency"].startswith(f"aftercorr:{ids[(nums[0], 'first')].split('_')[0]}_*")
        assert ids[(5, "first")] == "-" and "_" not in ids[(5, "second")]  # f: single jobs, first skipped
        assert scontrol(ids[(5, "third")])["Dependency"].startswith(f"afterok:{ids[(5, 'second')]}(")
    finally:
        cancel(sorted({i.split("_")[0] for i in ids.values() if i != "-"}))


@on_slurm
def test_arrays_longer_than_the_limit_are_split_keeping_the_task_pairing(tmp_path):
    out = run_app("-m", "hydra/launcher=kdgat_chain", f"out={tmp_path}", "tag=a,b,c,d,e",
                  "hydra.launcher.max_array_size=2", f"hydra.sweep.dir={tmp_path}/s",
                  "+hydra.launcher.additional_parameters.hold=true", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ids = job_ids(tmp_path / "s")
    try:
        for nums in ([0, 1], [2, 3]):  # chunks of two; task i of a chunk's second waits on task i of its first
            second = scontrol(ids[(nums[0], "second")])
            assert [ids[(n, "second")].split("_")[1] for n in nums] == ["0", "1"]
            assert second["Dependency"].startswith(f"aftercorr:{ids[(nums[0], 'first')].split('_')[0]}_*")
        assert "_" not in ids[(4, "first")]  # the lone remainder: single jobs
        assert len({i.split("_")[0] for i in ids.values()}) == 2 * 3 + 3
    finally:
        cancel(sorted({i.split("_")[0] for i in ids.values()}))


@on_slurm
def test_resubmitting_a_queued_array_sweep_attaches_to_its_tasks(tmp_path):
    args = ["-m", "hydra/launcher=kdgat_chain", f"out={tmp_path}", "tag=a,b",
            "+hydra.launcher.additional_parameters.hold=true"]
    first = run_app(*args, f"hydra.sweep.dir={tmp_path}/s1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    ids = job_ids(tmp_path / "s1")
    try:
        again = run_app(*args, f"hydra.sweep.dir={tmp_path}/s2", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert job_ids(tmp_path / "s2") == ids  # every task found queued, none submitted twice
        assert "0 jobs submitted" in again.stdout
        statuses = {s.status for c in read_manifest(tmp_path / "s2").chains for s in c.stages}
        assert statuses == {"attached (queued)"}
    finally:
        cancel(sorted({i.split("_")[0] for i in ids.values()}))


@on_slurm
def test_a_users_own_configs_and_relative_paths_on_the_cluster(tmp_path):
    """`--config-dir` with the user's pipeline (a presets list) and dataset, a relative dataset.path: the
    stage jobs run where the command was typed, with its version base (no chdir), and log to train.log."""
    from kdgat.data import synth

    synth.generate(tmp_path / "captures" / "mycan", like="set_01", frames=20_000, seed=2, progress=False)
    conf = tmp_path / "myconf"
    (conf / "pipeline").mkdir(parents=True)
    (conf / "dataset").mkdir()
    (conf / "pipeline" / "quick.yaml").write_text("name: quick\npresets: [autoencoder, curriculum]\nstages: {}\n")
    (conf / "dataset" / "mycan.yaml").write_text("name: mycan\nsource: null\npath: ${paths.data}/mycan\n"
                                                 "synthetic: null\n")
    out = run_train("--config-dir", str(conf), "pipeline=quick", "dataset=mycan", "dataset.path=captures/mycan",
                    "train.max_epochs=1", "resources.cpus=2", "resources.gpus=0", "hydra/launcher=kdgat_chain",
                    f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    ids = job_ids(tmp_path / "sweep")
    assert set(states(list(ids.values()), deadline_s=600).values()) == {"COMPLETED"}
    for stage in ("autoencoder", "curriculum"):
        folder = tmp_path / "sweep" / "0" / stage
        assert f"{stage} epoch 1/1" in (folder / "train.log").read_text()
        slurm_log = next((folder / ".submitit").glob("*_0_log.out")).read_text()
        assert "change working directory" not in slurm_log
    assert not list(tmp_path.rglob("???"))


# ---------------------------------------------------------------------- retries (out of memory, out of time)

@on_slurm
def test_in_an_array_sweep_only_the_chain_that_ran_out_of_memory_is_retried(tmp_path):
    """Two chains as arrays (seed 0 and 1, the same resources); seed 1's VGAE holds more than its 2G and is
    killed: that chain alone is submitted again (single jobs, with 4G), the other keeps its array tasks."""
    cases = tmp_path / "conf" / "case"  # a config group of the user's: one option per chain
    cases.mkdir(parents=True)
    for name, seed, hold in (("calm", 0, 0), ("hungry", 1, 2048)):
        (cases / f"{name}.yaml").write_text(f"# @package _global_\nseed: {seed}\ntrain:\n  test_hold_mem_mb: {hold}\n")
    out = run_train("-m", "--config-dir", str(tmp_path / "conf"), "pipeline=curriculum_only",
                    "dataset.synthetic.frames=20000", "train.max_epochs=1", "+case=calm,hungry",
                    "resources.cpus=2", "resources.gpus=0", "pipeline.stages.autoencoder.resources.mem=2G",
                    "hydra.launcher.retry.mem_factor=2", "hydra/launcher=kdgat_chain",
                    f"hydra.sweep.dir={tmp_path}/s", cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    first = job_ids(tmp_path / "s")
    assert all("_" in job for job in first.values())  # arrays
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:  # until every guard has ended without making another attempt
        known = guards(tmp_path / "s")
        states(known, deadline_s=600)
        if guards(tmp_path / "s") == known:
            break
    tries = {num: read_attempts(tmp_path / "s" / str(num)) for num in (0, 1)}
    assert len(tries[0]) == 1 and len(tries[1]) == 2
    retried = tries[1][1]
    assert retried.requests["autoencoder"]["mem"] == "4G" and "_" not in retried.jobs["autoencoder"]
    final = states([*tries[1][1].jobs.values(), first[(0, "autoencoder")], first[(0, "curriculum")]])
    assert set(final.values()) == {"COMPLETED"}, final
    assert not set(queued_ids()) & {*first.values(), *retried.jobs.values(), *guards(tmp_path / "s")}


@on_slurm
def test_without_retries_no_guard_is_submitted(tmp_path):
    out = run_app("hydra/launcher=kdgat_chain", f"out={tmp_path}", "hydra.launcher.retry.oom=0",
                  "hydra.launcher.retry.timeout=0", "+hydra.launcher.additional_parameters.hold=true",
                  f"hydra.sweep.dir={tmp_path}/s", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    try:
        assert guards(tmp_path / "s") == [] and not (tmp_path / "s" / "0" / "retry").exists()
        assert "retry guard" not in out.stdout
    finally:
        cancel(list(job_ids(tmp_path / "s").values()))
