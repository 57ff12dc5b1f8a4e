"""The training loop's environment rules: threads never above the CPUs this process may use."""

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
