"""Dry runs: the plan of a launch on SLURM (every sbatch script, each checked with `sbatch --test-only`) or
on this machine (the order its jobs would run in); nothing submitted or run, and nothing written."""

from typing import Any, Dict, List, Sequence

from hydra_plugins.kdgat_chain_launcher._backend import Queued, Submission
from hydra_plugins.kdgat_chain_launcher._local import LocalBackend
from hydra_plugins.kdgat_chain_launcher._slurm import SlurmBackend, test_only


class SlurmDryRun(SlurmBackend):
    writes = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scripts: List[tuple] = []
        self._guards: List[tuple] = []

    def check(self, submissions: Sequence[Submission]) -> List[str]:
        """sinfo's limits refuse a dry run as they would the launch; each script's --test-only verdict is
        printed with it."""
        return self._refusals(self._limit_problems(submissions)[0])

    def submit(self, submission: Submission) -> List[Queued]:
        """Placeholder ids (`<stage>`, `<stage>_<task>` in an array) that later scripts show as their
        dependencies; the script is printed by `finish`, all checked at once."""
        self._scripts.append((submission, self.script(submission)))
        stage, log = submission.stage.name, str(submission.folder / "%j_0_log.out")
        if submission.array:
            return [Queued(f"<{stage}>_{i}", log) for i in range(len(submission.tasks))]
        return [Queued(f"<{stage}>", log)]

    def submit_guard(self, guard: Any, chain_dir: Any, number: int, jobs: Sequence[str], name: str) -> str:
        self._guards.append((name, list(jobs)))
        return f"<guard_{name}>"

    def finish(self) -> Dict[str, Any]:
        verdicts = test_only([script for _, script in self._scripts])
        for (sub, script), verdict in zip(self._scripts, verdicts):
            who = ", ".join(f"job {t.chain}" for t in sub.tasks)
            kind = f"array of {len(sub.tasks)} tasks" if sub.array else "job"
            print(f"\n--- sbatch script for stage {sub.stage.name} ({kind}: {who}; sbatch --test-only: {verdict}) "
                  f"---\n{script}")
        arrays = [s for s, _ in self._scripts if s.array]
        jobs = sum(len(s.tasks) for s, _ in self._scripts)
        print(f"kdgat_chain: would submit {jobs} jobs in {len(self._scripts)} submissions" +
              (f" ({len(arrays)} arrays: " + "; ".join(
                  f"{s.stage.name} of jobs {','.join(str(t.chain) for t in s.tasks)}" for s in arrays) + ")"
               if arrays else ""))
        if self._guards:
            print(f"kdgat_chain: and {len(self._guards)} retry guard jobs (one per chain: out of memory or time, "
                  f"retry policy {self.params.get('retry')})")
        print("kdgat_chain: dry run: nothing submitted, nothing written")
        return {}

    def describe(self) -> str:
        return "nowhere (dry run)"


class LocalDryRun(LocalBackend):
    """What `hydra.launcher.cluster=local` would run, in order (a job another launch still runs is attached
    to, as by the real launch, but not linked: nothing is written)."""

    writes = False

    def submit(self, submission: Submission) -> List[Queued]:
        """Placeholder ids `<stage:job number>`: one per chain, as the local backend runs arrays as their tasks."""
        queued = [Queued(f"<{submission.stage.name}:{t.chain}>", str(submission.folder / "log.out"))
                  for t in submission.tasks]
        self.queue += [{"job_id": q.job_id} for q in queued]
        return queued

    def finish(self) -> Dict[str, Any]:
        print(f"kdgat_chain: would run {len(self.queue)} jobs on this machine, one at a time, each once the jobs "
              "it depends on have completed")
        print("kdgat_chain: dry run: nothing run, nothing written")
        return {}

    def describe(self) -> str:
        return "nowhere (dry run)"
