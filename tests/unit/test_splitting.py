"""Cutting a CAN file in two at a frame count (kdgat.data.splitting), and the plans of the downloads
(kdgat.data.distributions), which go by names alone."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest

from kdgat.data.distributions import plan_import
from kdgat.data.formats import read_frames
from kdgat.data.splitting import find_cut, write_first, write_second
from kdgat.errors import KdgatError

HEADER = "timestamp,arbitration_id,data_field,attack"


def cut_file(path, fraction):
    cut = find_cut(path, fraction)
    parts = []
    for write in (write_first, write_second):
        out, digest = io.BytesIO(), hashlib.sha256()
        write(path, cut, out, digest)
        assert digest.hexdigest() == hashlib.sha256(out.getvalue()).hexdigest()
        parts.append(out.getvalue())
    return cut, parts


def test_a_file_with_a_header_keeps_it_in_both_parts(tmp_path, monkeypatch):
    from kdgat.data.formats import blocks

    monkeypatch.setattr(blocks, "BLOCK_BYTES", 64)  # the cut falls inside one of many blocks
    rows = [f"{i}.5,{i:03X},{i % 256:02X},{int(i % 4 == 0)}" for i in range(40)]
    rows.insert(32, "bad,row")  # right after the 32nd frame, where the cut is: it goes with the rest
    path = tmp_path / "a.csv"
    path.write_bytes(("\ufeff" + HEADER + "\r\n" + "\r\n".join(rows) + "\r\n").encode())
    cut, (first, second) = cut_file(path, 0.8)
    assert (cut.first.frames, cut.first.injected, cut.first.bad_rows) == (32, 8, 0)
    assert (cut.second.frames, cut.second.injected, cut.second.bad_rows) == (8, 2, 1)
    assert second.startswith(("\ufeff" + HEADER + "\r\n").encode()) and second.endswith(b"39.5,027,27,0\r\n")
    (tmp_path / "1.csv").write_bytes(first)
    (tmp_path / "2.csv").write_bytes(second)
    a, b = read_frames(tmp_path / "1.csv")[0], read_frames(tmp_path / "2.csv")[0]
    whole = read_frames(path)[0]
    assert np.array_equal(np.concatenate([a.can_id, b.can_id]), whole.can_id)
    assert cut.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_too_small_to_cut_is_an_error(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("1.0,0153,1,00,R\n")
    with pytest.raises(KdgatError, match="1 usable frames cannot be cut 80% / 20%"):
        find_cut(path, 0.8)


def touch(root, *names):
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")


def test_survival_plan_puts_each_file_where_the_readme_says(tmp_path):
    touch(tmp_path, *(f"{v}/{f}_{v}.txt" for v in ("Sonata", "Soul", "Spark")
                      for f in ("FreeDrivingData_20180112", "Flooding_dataset", "Fuzzy_dataset", "Malfunction1_dataset")),
          "Soul/notes.pdf")
    (plan,) = plan_import(tmp_path)
    assert plan.dataset == "hcrl_sa" and plan.distribution == "hcrl-survival"
    assert sorted(plan.links) == [
        "test_02_unknown_vehicle_known_attack/Flooding_dataset_Spark.txt",
        "test_02_unknown_vehicle_known_attack/Fuzzy_dataset_Spark.txt",
        "test_03_known_vehicle_unknown_attack/Malfunction1_dataset_Sonata.txt",
        "test_03_known_vehicle_unknown_attack/Malfunction1_dataset_Soul.txt",
        "test_04_unknown_vehicle_unknown_attack/Malfunction1_dataset_Spark.txt",
        "train_01_attack_free/FreeDrivingData_20180112_Sonata.txt",
        "train_01_attack_free/FreeDrivingData_20180112_Soul.txt",
    ]
    assert sorted((s.train, s.test) for s in plan.splits) == [
        (f"train_02_with_attacks/{a}_dataset_{v}.txt", f"test_01_known_vehicle_known_attack/{a}_dataset_{v}.txt")
        for a in ("Flooding", "Fuzzy") for v in ("Sonata", "Soul")]
    assert set(plan.left_out) == {"Spark/FreeDrivingData_20180112_Spark.txt", "Soul/notes.pdf"}


def test_car_hacking_and_v15_plans(tmp_path):
    touch(tmp_path / "ch", "DoS_dataset.csv", "RPM_dataset.csv", "normal_run_data.7z", "readme.txt")
    (plan,) = plan_import(tmp_path / "ch", train_fraction=0.7)
    assert [(s.train, s.test) for s in plan.splits] == [
        ("train_02_with_attacks/DoS_dataset.csv", "test_01_DoS/DoS_dataset.csv"),
        ("train_02_with_attacks/RPM_dataset.csv", "test_04_rpm_spoofing/RPM_dataset.csv")]
    assert plan.extracts == {"train_01_attack_free/normal_run_data.txt": (tmp_path / "ch" / "normal_run_data.7z",
                                                                          "normal_run_data.txt")}
    assert plan.train_fraction == 0.7 and "first 70% of frames" in plan.split_rule
    assert plan.left_out == {"readme.txt": "not a file of the Car-Hacking download"}

    touch(tmp_path / "v15", "hcrl_ch/train_01_attack_free/a.csv", "hcrl_ch/test_01_DoS/b.csv", "set_04/train_01/c.csv",
          "set_04/test_03/d.csv", "set_04/README.md", "notes.txt")
    plans = {p.dataset: p for p in plan_import(tmp_path / "v15")}
    assert sorted(plans) == ["hcrl_ch", "set_04"]
    assert sorted(plans["set_04"].links) == ["test_03_known_vehicle_unknown_attack/d.csv", "train_01/c.csv"]
    assert plans["set_04"].left_out == {"README.md": "not a train_*/ or test_*/ folder"}
    with pytest.raises(KdgatError, match="holds hcrl_ch, set_04, not set_01"):
        plan_import(tmp_path / "v15", ["set_01"])
    with pytest.raises(KdgatError, match="'my set' is not a dataset name"):
        plan_import(tmp_path / "v15", ["my set"])
