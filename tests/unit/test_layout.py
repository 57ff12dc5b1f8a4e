"""Discovery of a dataset folder's train and test files."""

from __future__ import annotations

import pytest

from kdgat.data.layout import DatasetLayout, dataset_problem, discover
from kdgat.errors import KdgatError


def make(root, layout: dict[str, list[str]]):
    for folder, files in layout.items():
        (root / folder).mkdir(parents=True)
        for name in files:
            (root / folder / name).write_text("x\n")
    return root


def test_discovery_order_and_scenario_names(tmp_path):
    make(
        tmp_path,
        {
            "train_02_with_attacks": ["b.csv", "a.csv"],
            "train_01_attack_free": ["z.txt", "notes.md", ".hidden.csv"],
            "test_10_masquerade": ["m.csv"],
            "test_02_fuzzing": ["f.log"],
            "test_01_dos": ["d2.csv", "d1.CSV"],
            "processed": ["cache.csv"],  # not a train_ or test_ folder: ignored
        },
    )
    layout = discover(tmp_path)
    assert isinstance(layout, DatasetLayout) and layout.root == tmp_path
    assert list(layout.train) == ["train_01_attack_free", "train_02_with_attacks"]
    assert [p.name for p in layout.train["train_01_attack_free"]] == ["z.txt"]
    assert [p.name for p in layout.train["train_02_with_attacks"]] == ["a.csv", "b.csv"]
    assert list(layout.test) == ["dos", "fuzzing", "masquerade"]  # by N, 10 after 02
    assert [p.name for p in layout.test["dos"]] == ["d1.CSV", "d2.csv"]
    assert [p.name for p in layout.files()] == ["z.txt", "a.csv", "b.csv", "d1.CSV", "d2.csv", "f.log", "m.csv"]
    assert all(p.is_absolute() == tmp_path.is_absolute() and p.exists() for p in layout.files())


def test_no_test_folders_is_allowed(tmp_path):
    make(tmp_path, {"train_01_attack_free": ["a.csv"]})
    layout = discover(tmp_path)
    assert layout.test == {} and [p.name for p in layout.files()] == ["a.csv"]


def test_missing_root_says_where_it_looked(tmp_path):
    with pytest.raises(KdgatError, match=f"{tmp_path / 'hcrl_sa'}.*does not exist"):
        discover(tmp_path / "hcrl_sa")
    (tmp_path / "file").write_text("")
    with pytest.raises(KdgatError, match="not a directory"):
        discover(tmp_path / "file")


def test_no_train_folder(tmp_path):
    make(tmp_path, {"test_01_dos": ["a.csv"]})
    with pytest.raises(KdgatError) as err:
        discover(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "train_*" in message and "test_01_dos" in message
    assert "\n" not in message


def test_folder_without_data_files(tmp_path):
    make(tmp_path, {"train_01_attack_free": ["a.csv"], "test_01_dos": ["readme.md"]})
    with pytest.raises(KdgatError, match="test_01_dos.*no data file"):
        discover(tmp_path)


@pytest.mark.parametrize("name", ["test_dos", "test_01", "test_01_", "test_x1_dos"])
def test_badly_named_test_folder(tmp_path, name):
    make(tmp_path, {"train_01_attack_free": ["a.csv"], name: ["a.csv"]})
    with pytest.raises(KdgatError) as err:
        discover(tmp_path)
    assert name in str(err.value) and "test_<N>_<scenario>" in str(err.value)


def test_two_folders_for_one_scenario(tmp_path):
    make(tmp_path, {"train_01_attack_free": ["a.csv"], "test_01_dos": ["a.csv"], "test_02_dos": ["b.csv"]})
    with pytest.raises(KdgatError, match="'dos'"):
        discover(tmp_path)


def test_dataset_problem_is_the_layout_or_the_first_file_without_a_usable_frame(tmp_path):
    assert "does not exist" in dataset_problem(tmp_path / "nowhere")
    make(tmp_path, {"train_01_attack_free": ["a.csv"], "test_01_dos": ["d.csv"]})
    header = "timestamp,arbitration_id,data_field,attack\n"
    (tmp_path / "train_01_attack_free" / "a.csv").write_text(header + "1.0,0C1,00,0\n")
    (tmp_path / "test_01_dos" / "d.csv").write_text(header + "1.0,XYZ,00,1\n")
    problem = dataset_problem(tmp_path)
    assert problem.startswith(f"{tmp_path / 'test_01_dos' / 'd.csv'}: no usable CAN frame")
    (tmp_path / "test_01_dos" / "d.csv").write_text(header + "1.25,0C1,00,1\n")  # another size: not cached
    assert dataset_problem(tmp_path) is None
