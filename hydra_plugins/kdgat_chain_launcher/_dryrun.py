"""The dry run: the SLURM plan and every sbatch script, each checked with `sbatch --test-only`;
nothing submitted and nothing written."""

from typing import Any, Dict, List, Sequence

from hydra_plugins.kdgat_chain_launcher._backend import Queued, Submission
from hydra_plugins.kdgat_chain_launcher._slurm import SlurmBackend, test_only


class DryRunBackend(SlurmBackend):
    writes = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scripts: List[tuple] = []
        self._guards: List[tuple] = []

    def check(self, submissions: Sequence[Submission]) -> List[str]:
        return []  # each script's own verdict is printed with it

    def submit(self, submission: Submission) -> List[Queued]:
        """Placeholder ids (`<stage>`, `<stage>_<task>` in an array) that later scripts show as their
        dependencies; the script is printed by `finish`, all checked at once."""
        self._scripts.append((submission, self.script(submission)))
        stage, log = submission.stage.name, str(submission.folder / "%j_0_log.out")
        if submission.array:
            return [Queued(f"<{stage}>_{i}", log) for i in range(len(submission.tasks))]
        return [Queued(f"<{stage}>", log)]

    def submit_guard(self, chain_dir: Any, number: int, jobs: Sequence[str], name: str) -> str:
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
