"""The "bad input" cases of the reliability catalogue (bench/reliability_cases.py): a request kdgat must refuse
before it submits or writes anything, the one boundary value it must accept, and shell characters that must
stay data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from cluster import job_ids, run_app, states
from reliability_sandbox import LAUNCH, Result, Sandbox, error_lines, refused


def bad_request(*args: str, names: list[str], app: bool = False, data: Callable[[Path], None] | None = None,
                env: dict | None = None) -> Callable[[Sandbox], Result]:
    """A case: `train.py ARGS hydra/launcher=kdgat_chain` (or the chain app) must be refused."""
    def case(box: Sandbox) -> Result:
        if data:
            data(box.data)
        return refused(box, *args, *(() if app else (LAUNCH,)), names=names, app=app, env=env)
    return case


def unusable_dataset(data: Path) -> None:
    """hcrl_sa laid out right, but no file holds one usable frame."""
    (data / "hcrl_sa" / "train_01_attack_free").mkdir(parents=True)
    (data / "hcrl_sa" / "test_01_flooding").mkdir(parents=True)
    (data / "hcrl_sa" / "train_01_attack_free" / "normal.csv").write_text("hello,world\nnot,a,can,frame\n" * 50)
    (data / "hcrl_sa" / "test_01_flooding" / "dos.csv").write_text(
        "timestamp,arbitration_id,data_field,attack\n" + "yesterday,XYZ,00112233,maybe\n" * 50)


def shell_values_in_a_dataset_name(box: Sandbox) -> Result:
    """Each spelling of a dataset name holding shell characters, spaces or a newline: one line, nothing run."""
    result = Result()
    said = []
    for value in ("x;touch PWNED1", "$(touch PWNED2)", "'a b `touch PWNED3`'", "a\nb", "'a\nb;touch PWNED4'"):
        one = refused(box, f"dataset={value}", LAUNCH, names=["dataset", "hcrl_sa|quote"])
        result.problems += [f"dataset={value!r}: {p}" for p in one.problems]
        said.append(one.did.split(": ", 1)[0])
    pwned = [str(p) for p in box.root.rglob("PWNED*")]
    result.check(not pwned, f"a value was executed: {pwned}")
    result.did = f"5 spellings refused ({', '.join(sorted(set(said)))}); " + \
        ("nothing executed" if not pwned else f"{len(pwned)} executed")
    return result


def gpus_zero_is_valid(box: Sandbox) -> Result:
    """The one boundary value that must pass: a CPU-only stage, previewed (nothing submitted)."""
    out = box.train("pipeline.stages.fusion.resources.gpus=0", LAUNCH, "hydra.launcher.dry_run=true")
    result = Result()
    result.check(out.returncode == 0, f"refused: {error_lines(out.stderr)[-3:]}")
    scripts = out.stdout.split("--- sbatch script for stage ")[1:]
    fusion = [s for s in scripts if s.startswith("fusion")]
    result.did = (f"dry run exit {out.returncode}; fusion's script "
                  f"{'has no --gres' if fusion and '--gres' not in fusion[0] else 'asks for a GPU or is missing'}")
    result.check(len(fusion) == 1 and "--gres" not in fusion[0], "the fusion script is missing or asks for a GPU")
    result.check(all("--gres=gpu:1" in s for s in scripts if not s.startswith("fusion")),
                 "the other stages lost their GPU")
    result.check(not box.submitted(), "a dry run submitted jobs")
    return result


def cluster_limit(override: str, bad: str, limit: str) -> Callable[[Sandbox], Result]:
    """A request no node or partition of the cluster can satisfy, on the chain's last stage, so that a chain
    checked only by sbatch would be half submitted before the refusal."""
    def case(box: Sandbox) -> Result:
        return refused(box, f"pipeline.stages.fusion.{override}", LAUNCH, names=["fusion", bad, limit])
    return case


def shell_values_in_names_and_paths(box: Sandbox) -> Result:
    """Shell metacharacters, spaces and newlines in a path, a job name and a value reach the jobs as data: the
    chain runs, nothing is executed, and kdgat's own scripts pass `sbatch --test-only`."""
    odd = box.work / "a dir; with $(touch PWNED1) & `touch PWNED2`"
    odd.mkdir()
    out = run_app(LAUNCH, f"out='{odd}'", f"hydra.sweep.dir='{odd}/sweep'",
                  "hydra.launcher.job_name='{stage};touch PWNED3'",
                  f"+evil='x\ntouch {box.root}/PWNED4 $(touch {box.root}/PWNED5)'", cwd=box.work, env=box.env)
    result = Result(did=f"chain app exit {out.returncode}")
    if not result.check(out.returncode == 0, f"submit failed: {error_lines(out.stderr)[-3:]}"):
        return result
    ids = list(job_ids(odd / "sweep").values())
    final = states(ids, deadline_s=120)
    result.check(set(final.values()) == {"COMPLETED"}, f"jobs did not complete: {final}")
    result.check((odd / "x-third.done").is_file(), "the last stage wrote nothing")
    # kdgat itself: a data folder, an artifacts path and a job name full of shell characters, previewed
    data = box.root / "data $(touch PWNED6);x"
    preview = box.train("pipeline=teacher", LAUNCH, "hydra.launcher.dry_run=true", f"paths.artifacts='{odd}/runs'",
                        "hydra.launcher.job_name='{stage}`touch PWNED7`'", env={"KDGAT_DATA": str(data)})
    verdicts = re.findall(r"sbatch --test-only: (\w+)", preview.stdout)
    result.check(preview.returncode == 0 and verdicts == ["ok"] * 3,
                 f"kdgat's dry run: exit {preview.returncode}, test-only verdicts {verdicts}")
    pwned = [str(p) for p in box.root.rglob("PWNED*")]
    result.check(not pwned, f"a value was executed: {pwned}")
    result.did = (f"chain {'/'.join(sorted(set(final.values())))}, 3 kdgat scripts {'/'.join(set(verdicts))}; "
                  + ("nothing executed" if not pwned else f"{len(pwned)} executed"))
    return result
