"""Every command in the README runs as written, in a fresh folder, as a user would type it.

Each code block carries a mark just before it: `<!-- readme-test: run -->` (run each command),
`dry-run` (the same, with `hydra.launcher.dry_run=true` added to what would submit to SLURM) or
`skip (why)`. Where a command trains, `train.max_epochs=1` is added so that the suite stays fast; the
real datasets a command names (hcrl_sa, set_01) are small synthetic copies in the folder's data/.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
MARK = re.compile(r"<!-- readme-test: (run|dry-run|skip)\b[^>]*-->\s*$")


def marked_blocks() -> list[tuple[str, str, str]]:
    """(mark, language, text) of every bash and python block, in the README's order."""
    text = (ROOT / "README.md").read_text()
    blocks = []
    for fence in FENCE.finditer(text):
        if fence[1] not in ("bash", "python"):
            continue
        before = text[:fence.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        line = text[:fence.start()].count("\n") + 1
        assert mark, f"README line {line}: a {fence[1]} block without a readme-test mark"
        blocks.append((mark[1], fence[1], fence[2]))
    return blocks


def commands(block: str) -> list[str]:
    """The block's command lines, comments and blank lines left out."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s{2,}#.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def adapted(command: str, mark: str, sweep: Path | None) -> str:
    command = re.sub(r"\s\[[^\]]*\]", "", command)  # [optional] parts left out
    if sweep is not None:
        command = command.replace("SWEEP_DIR", str(sweep))
    train = " train.py " in f" {command} "
    to_slurm = "hydra/launcher=kdgat_chain" in command and "cluster=local" not in command
    if train and mark == "dry-run" and to_slurm:
        command += " hydra.launcher.dry_run=true"
    if train and "--cfg" not in command and "dry_run" not in command and "max_epochs" not in command:
        command += " train.max_epochs=1"
    python = f"{sys.executable}"
    command = re.sub(r"^(\.venv/bin/)?python ", python + " ", command)
    return re.sub(r"^kdgat ", f"{python} -m kdgat.cli ", command).replace(
        " train.py ", f" {ROOT / 'train.py'} ", 1)


def newest_sweep(folder: Path) -> Path | None:
    sweeps = sorted(folder.glob("multirun/*/*/manifest.json"), key=lambda p: p.stat().st_mtime)
    return sweeps[-1].parent if sweeps else None


def test_every_readme_command_runs_as_written(tmp_path):
    from kdgat.data import synth

    for name in ("hcrl_sa", "set_01"):
        synth.generate(tmp_path / "data" / name, like=name, frames=20_000, seed=1, progress=False)
    ran = 0
    for mark, language, block in marked_blocks():
        if mark == "skip":
            continue
        if language == "python":
            out = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True,
                                 timeout=900)
            assert out.returncode == 0, f"README python block failed:\n{block}\n{out.stderr[-3000:]}"
            ran += 1
            continue
        for command in commands(block):
            shown = adapted(command, mark, newest_sweep(tmp_path))
            out = subprocess.run(shown, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=900)
            assert out.returncode == 0, f"README command failed: {command}\n  as: {shown}\n{out.stderr[-3000:]}"
            ran += 1
    assert ran >= 15  # the README has at least that many runnable commands; a parsing slip would find fewer
    assert not list(tmp_path.rglob("???")), "a file named ??? (an unresolved log name)"
    logs = list(tmp_path.glob("multirun/*/*/0/*/train.log"))
    assert logs and all("epoch 1/1" in log.read_text() for log in logs if log.parent.name != "fusion")
