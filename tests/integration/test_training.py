"""The training loop's environment rules: threads never above the CPUs this process may use."""

import math
import os

from kdgat.training import usable_cpus


def test_threads_follow_slurm_but_never_exceed_the_cpus_we_may_use(monkeypatch):
    allowed = len(os.sched_getaffinity(0))
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert usable_cpus() == allowed
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "48")  # the local cluster grants 48 on a 2-core machine
    assert usable_cpus() == allowed
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert usable_cpus() == 1


def test_saved_tensors_carry_a_digest_that_catches_flipped_bytes(tmp_path):
    import pytest
    import torch

    from kdgat.errors import KdgatError
    from kdgat.training import load_tensors, save_tensors

    path = tmp_path / "checkpoint.pt"
    save_tensors(path, {"w": torch.arange(1000.0)})
    assert torch.equal(load_tensors(path)["w"], torch.arange(1000.0))
    data = bytearray(path.read_bytes())
    data[-200:-136] = bytes(64)  # same size, some bytes changed: torch.load alone may not notice
    path.write_bytes(bytes(data))
    with pytest.raises(KdgatError, match="does not match its sha256"):
        load_tensors(path)



def test_a_checkpoint_on_disk_always_has_its_digest(tmp_path, monkeypatch):
    """The digest is written first: a job killed before the file lands leaves no file that could be loaded
    unchecked, and a later save of the same path is checked as usual."""
    import pytest
    import torch

    from kdgat import training

    path = tmp_path / "checkpoint.pt"
    write_file = training.write_bytes_atomic

    def killed(*_args):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(training, "write_bytes_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        training.save_tensors(path, {"epoch": torch.tensor(1)})
    assert not path.exists() and training.digest_path(path).is_file()
    monkeypatch.setattr(training, "write_bytes_atomic", write_file)
    training.save_tensors(path, {"epoch": torch.tensor(2)})
    assert training.load_tensors(path)["epoch"].item() == 2


class _Killed(Exception):
    """Stands in for a job killed in the middle of an epoch."""


def _job(checkpoint, lr_schedule, rates, killed_at=None, epochs=7):
    """A tiny regression trained by kdgat.training.fit, recording the learning rate each epoch ran at."""
    import torch

    from kdgat.training import Fit

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.linspace(-1, 1, 30).reshape(10, 3)
    y = x.sum(dim=1, keepdim=True)

    def train_epoch(epoch, bar):
        if epoch == killed_at:
            raise _Killed
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        return {"train_loss": loss.item()}

    def validate():
        return {"val_loss": ((model(x) - y) ** 2).mean().item()}

    return Fit(model=model, optimizer=optimizer, train_epoch=train_epoch, validate=validate, monitor="val_loss",
               mode="min", epochs=epochs, patience=epochs, checkpoint=checkpoint, desc="test", lr_schedule=lr_schedule,
               progress=False)


def _cosine(epochs):
    return [0.01 * 0.5 * (1 + math.cos(math.pi * epoch / epochs)) for epoch in range(epochs)]


def test_cosine_rates_per_epoch_follow_the_formula_also_after_a_resume(tmp_path):
    import pytest
    import torch

    from kdgat.training import fit

    rates = []
    whole = _job(tmp_path / "whole.pt", "cosine", rates)
    fit(whole)
    assert rates == pytest.approx(_cosine(7), rel=1e-12)

    resumed_rates = []
    with pytest.raises(_Killed):
        fit(_job(tmp_path / "resumed.pt", "cosine", resumed_rates, killed_at=3))
    assert resumed_rates == pytest.approx(_cosine(7)[:3], rel=1e-12)
    resumed = _job(tmp_path / "resumed.pt", "cosine", resumed_rates)  # a fresh process: new model and optimiser
    summary = fit(resumed)
    assert summary["resumed_from_epoch"] == 3
    assert resumed_rates == pytest.approx(_cosine(7), rel=1e-12)
    for a, b in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_constant_rate_and_unknown_schedule(tmp_path):
    import pytest

    from kdgat.errors import KdgatError
    from kdgat.training import fit

    rates = []
    fit(_job(tmp_path / "constant.pt", "constant", rates, epochs=4))
    assert rates == [0.01] * 4
    rates = []
    with pytest.raises(KdgatError, match="unknown train.lr_schedule 'linear'; use constant or cosine") as err:
        fit(_job(tmp_path / "linear.pt", "linear", rates))
    assert "\n" not in str(err.value) and rates == []  # one line, before any training


def test_a_checkpoint_without_scheduler_state_starts_over(tmp_path, caplog):
    """A checkpoint written before the scheduler's state was saved cannot give the rates: it is set aside."""
    import pytest

    from kdgat.training import fit, load_tensors, save_tensors

    checkpoint = tmp_path / "old.pt"
    fit(_job(checkpoint, "cosine", [], epochs=3))
    state = load_tensors(checkpoint)
    del state["scheduler"]
    save_tensors(checkpoint, state)
    rates = []
    assert fit(_job(checkpoint, "cosine", rates, epochs=3))["resumed_from_epoch"] == 0
    assert rates == pytest.approx(_cosine(3), rel=1e-12)
    assert "ignoring unreadable checkpoint" in caplog.text
