"""`kdgat data import` on generated copies of the three public downloads (bench/downloads.py), in their real
layouts and row styles: what lands where, the exact counts that the import and `kdgat data info` give, a
second import that changes nothing, the refusals, and one epoch of training on each imported dataset."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import downloads
from conftest import kdgat, run_train

FRACTION = 0.8


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Each download once, in a folder of its own: name -> (folder, truth per file)."""
    root = tmp_path_factory.mktemp("downloads")
    return {
        "car_hacking": (root / "car_hacking", downloads.car_hacking(root / "car_hacking")),
        "survival": (root / "survival", downloads.survival(root / "survival")),
        "v15": (root / "v15", downloads.ctt_v15(root / "v15", datasets=("hcrl-ch", "hcrl-sa", "set_01", "set_02"),
                                                bare_tests=("set_02",))),
    }


def imported(source: Path, out: Path, *args: str):
    done = kdgat("data", "import", str(source), "--out", str(out), *args, cwd=out.parent)
    assert done.returncode == 0, done.stderr
    return done


def info(folder: Path) -> dict[str, tuple]:
    """`kdgat data info`'s rows: file -> (format, frames, injected, bad rows)."""
    done = kdgat("data", "info", str(folder), cwd=folder.parent)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("file "))
    return {f[0]: (f[1], int(f[2]), int(f[3]), int(f[4])) for f in (line.split() for line in lines[start + 1 : -1])}


def counts(truth: downloads.Truth) -> tuple[int, int, int]:
    return truth.frames, truth.injected, truth.bad_rows


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under a folder: kind, inode, mtime, size and content."""
    out = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        body = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        out[path.relative_to(folder).as_posix()] = (path.is_symlink(), st.st_ino, st.st_mtime_ns, st.st_size, body)
    return out


def test_car_hacking_is_split_in_file_order_and_its_archive_extracted(made, tmp_path):
    source, truths = made["car_hacking"]
    out = tmp_path / "data"
    done = imported(source, out)
    tests = {"DoS_dataset.csv": "test_01_DoS", "Fuzzy_dataset.csv": "test_02_fuzzing",
             "gear_dataset.csv": "test_03_gear_spoofing", "RPM_dataset.csv": "test_04_rpm_spoofing"}
    expected = {"train_01_attack_free/normal_run_data.txt": ("hcrl_log", *counts(truths["normal_run_data.txt"]))}
    for name, test in tests.items():
        first, rest = truths[name].split(FRACTION)
        expected[f"train_02_with_attacks/{name}"] = ("hcrl_csv", *first)
        expected[f"{test}/{name}"] = ("hcrl_csv", *rest)
    assert info(out / "hcrl_ch") == expected
    assert sum(e[1] for e in expected.values()) == sum(t.frames for t in truths.values())  # no frame lost or doubled
    total = next(line.split() for line in done.stdout.splitlines() if line.startswith("total"))
    assert total[1:5] == [str(len(expected)), *(str(sum(e[k] for e in expected.values())) for k in (1, 2, 3))]
    assert "extracted from normal_run_data.7z" in done.stdout and "first 80% of each file" in done.stdout

    # the split parts are the source's own lines, cut once: together they are the file again
    for name, test in tests.items():
        train, rest = (out / "hcrl_ch" / "train_02_with_attacks" / name).read_bytes(), (out / "hcrl_ch" / test / name).read_bytes()
        assert train + rest == (source / name).read_bytes() and train.endswith(b"\r\n")

    record = json.loads((out / "hcrl_ch" / "import.json").read_text())
    assert (record["distribution"], record["source"]) == ("hcrl-car-hacking", str(source))
    assert record["split"]["train_fraction"] == FRACTION and "file order" in record["split"]["rule"]
    for name, entry in record["files"].items():
        assert entry["sha256"] == hashlib.sha256((out / "hcrl_ch" / name).read_bytes()).hexdigest()
    assert "time" not in json.dumps(record).lower()

    before = snapshot(out)
    again = imported(source, out)
    assert "0 files written, replaced or removed (it was imported already)" in again.stdout
    assert snapshot(out) == before

    # another fraction: the parts are made again, the counts follow
    imported(source, out, "--train-fraction", "0.5")
    first, rest = truths["DoS_dataset.csv"].split(0.5)
    rows = info(out / "hcrl_ch")
    assert rows["train_02_with_attacks/DoS_dataset.csv"][1:] == first and rows["test_01_DoS/DoS_dataset.csv"][1:] == rest


def test_car_hacking_with_its_log_already_extracted_links_it(made, tmp_path):
    source = tmp_path / "Car-Hacking Dataset"
    shutil.copytree(made["car_hacking"][0], source)
    import py7zr

    with py7zr.SevenZipFile(source / "normal_run_data.7z") as archive:
        archive.extractall(source / "normal_run_data")
    (source / "normal_run_data.7z").unlink()
    out = tmp_path / "data"
    done = kdgat("data", "import", str(tmp_path / "wrapper"), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 1 and "wrapper is not a folder" in done.stderr
    (tmp_path / "wrapper").mkdir()
    shutil.move(source, tmp_path / "wrapper")  # a folder holding only the unpacked folder is looked into
    imported(tmp_path / "wrapper", out)
    linked = out / "hcrl_ch" / "train_01_attack_free" / "normal_run_data.txt"
    assert os.path.samefile(linked, tmp_path / "wrapper" / source.name / "normal_run_data" / "normal_run_data.txt")


def survival_expected(truths: dict, vehicles: tuple[str, ...], unknown: str | None) -> dict[str, tuple]:
    """The layout the README promises, worked out here from the file names."""
    out = {}
    for key, truth in truths.items():
        vehicle, name = key.split("/")
        if vehicle not in vehicles:
            continue
        foreign = vehicle == unknown
        one = len(vehicles) == 1
        if name.startswith("FreeDriving"):
            if not foreign:
                fmt = "hcrl_csv_noflag" if vehicle == "Sonata" else "hcrl_csv_spaced"
                out[f"train_01_attack_free/{name}"] = (fmt, *counts(truth))
        elif name.startswith("Malfunction"):
            folder = ("test_02_unknown_attack" if one else
                      "test_04_unknown_vehicle_unknown_attack" if foreign else "test_03_known_vehicle_unknown_attack")
            out[f"{folder}/{name}"] = ("hcrl_csv", *counts(truth))
        elif foreign:
            out[f"test_02_unknown_vehicle_known_attack/{name}"] = ("hcrl_csv", *counts(truth))
        else:
            first, rest = truth.split(FRACTION)
            out[f"train_02_with_attacks/{name}"] = ("hcrl_csv", *first)
            out[f"{'test_01_known_attack' if one else 'test_01_known_vehicle_known_attack'}/{name}"] = ("hcrl_csv", *rest)
    return out


def test_survival_all_vehicles_follows_the_known_unknown_scenarios(made, tmp_path):
    source, truths = made["survival"]
    out = tmp_path / "data"
    done = imported(source, out)
    assert info(out / "hcrl_sa") == survival_expected(truths, ("Sonata", "Soul", "Spark"), unknown="Spark")
    assert "left out Spark/FreeDrivingData_20180112_Spark.txt" in done.stderr
    assert "linked 7 files as hard links" in done.stdout
    assert os.path.samefile(out / "hcrl_sa" / "test_04_unknown_vehicle_unknown_attack" / "Malfunction0316_dataset_Spark.txt",
                            source / "Spark" / "Malfunction0316_dataset_Spark.txt")
    before = snapshot(out)
    imported(source, out)
    assert snapshot(out) == before


def test_survival_one_vehicle_or_the_vehicles_there_are(made, tmp_path):
    source, truths = made["survival"]
    out = tmp_path / "data"
    imported(source, out, "--dataset", "hcrl_sa_spark,hcrl_sa_sonata")
    assert info(out / "hcrl_sa_spark") == survival_expected(truths, ("Spark",), unknown=None)
    assert info(out / "hcrl_sa_sonata") == survival_expected(truths, ("Sonata",), unknown=None)
    assert not (out / "hcrl_sa").exists()

    two = tmp_path / "two"
    for vehicle in ("Sonata", "Soul"):
        shutil.copytree(source / vehicle, two / vehicle)
    imported(two, tmp_path / "data2")
    expected = survival_expected(truths, ("Sonata", "Soul"), unknown=None)
    assert info(tmp_path / "data2" / "hcrl_sa") == expected
    assert not any("unknown_vehicle" in name for name in expected)  # without the Spark, no vehicle is unknown

    wrong = kdgat("data", "import", str(source), "--out", str(out), "--dataset", "hcrl_sa_golf", cwd=tmp_path)
    assert wrong.returncode == 1 and "can make hcrl_sa, hcrl_sa_sonata, hcrl_sa_soul, hcrl_sa_spark" in wrong.stderr


def test_v15_root_is_linked_as_it_is_under_kdgat_names(made, tmp_path):
    source, truths = made["v15"]
    out = tmp_path / "data"
    done = imported(source, out)
    names = {"hcrl-ch": "hcrl_ch", "hcrl-sa": "hcrl_sa", "set_01": "set_01", "set_02": "set_02"}
    bare = {"test_01": "test_01_known_vehicle_known_attack", "test_02": "test_02_unknown_vehicle_known_attack",
            "test_03": "test_03_known_vehicle_unknown_attack", "test_04": "test_04_unknown_vehicle_unknown_attack"}
    for dataset, name in names.items():
        expected = {}
        for key, truth in truths.items():
            d, folder, file = key.split("/")
            if d == dataset:
                expected[f"{bare.get(folder, folder)}/{file}"] = ("can_train_and_test", *counts(truth))
                assert os.path.samefile(out / name / bare.get(folder, folder) / file, source / key)
        assert info(out / name) == expected
    assert done.stdout.count("as hard links") == 4
    before = snapshot(out)
    imported(source, out)
    assert snapshot(out) == before

    only = tmp_path / "only"
    imported(source, only, "--dataset", "set_01")
    assert sorted(p.name for p in only.iterdir()) == ["set_01"]
    imported(source / "set_01", tmp_path / "one")  # one dataset's folder, named by its folder
    assert info(tmp_path / "one" / "set_01") == info(out / "set_01")
    renamed = tmp_path / "my copy"
    shutil.copytree(source / "set_01", renamed)
    unnamed = kdgat("data", "import", str(renamed), "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert unnamed.returncode == 1 and "name it with --dataset" in unnamed.stderr
    imported(renamed, tmp_path / "x", "--dataset", "set_03")
    assert (tmp_path / "x" / "set_03" / "import.json").is_file()


def test_an_unknown_folder_gets_one_line_naming_what_it_holds(tmp_path):
    folder = tmp_path / "stuff"
    (folder / "notes").mkdir(parents=True)
    (folder / "readme.md").write_text("hi\n")
    (folder / "capture.pcap").write_bytes(b"\0")
    done = kdgat("data", "import", str(folder), "--out", str(tmp_path / "data"), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"{folder} is no download kdgat knows: it holds capture.pcap, notes/, readme.md" in line
    assert "can-train-and-test v1.5" in line and "Car-Hacking" in line and "Survival" in line
    assert not (tmp_path / "data").exists()


def test_two_downloads_of_hcrl_ch_are_never_mixed(made, tmp_path):
    out = tmp_path / "data"
    imported(made["car_hacking"][0], out)
    before = snapshot(out)
    done = kdgat("data", "import", str(made["v15"][0]), "--out", str(out), "--dataset", "hcrl_ch", cwd=tmp_path)
    assert done.returncode == 1
    assert f"{out / 'hcrl_ch'} holds the HCRL Car-Hacking download (imported from {made['car_hacking'][0]})" in done.stderr
    assert "would mix two different datasets" in done.stderr
    assert snapshot(out) == before
    mine = tmp_path / "mine" / "hcrl_ch"
    (mine / "train_01_attack_free").mkdir(parents=True)
    (mine / "train_01_attack_free" / "a.csv").write_text("x\n")
    done = kdgat("data", "import", str(made["car_hacking"][0]), "--out", str(mine.parent), cwd=tmp_path)
    assert done.returncode == 1 and "did not make" in done.stderr


def test_links_fall_back_to_symbolic_and_say_so(made, tmp_path, monkeypatch):
    import errno

    from kdgat.data import importer

    def cross_device(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(importer.os, "link", cross_device)
    source = made["v15"][0]
    (result,) = importer.import_download(source, tmp_path / "data", ["set_01"])
    assert "as symbolic links (the download is on another filesystem)" in importer.summary(result)
    linked = tmp_path / "data" / "set_01" / "train_01_attack_free"
    assert all(p.is_symlink() and p.resolve().parent == source / "set_01" / "train_01_attack_free"
               for p in linked.iterdir())
    assert {e["how"] for e in result.files.values()} == {"symbolic link"}
    (again,) = importer.import_download(source, tmp_path / "data", ["set_01"])
    assert again.changed == 0


def test_copies_are_named_and_read_once_and_train_test_copies_are_leakage(made, tmp_path):
    source = tmp_path / "v15"
    shutil.copytree(made["v15"][0] / "set_01", source / "set_01")
    train = source / "set_01" / "train_01_attack_free" / "set_01_train_01_attack_free_0.csv"
    shutil.copy(train, source / "set_01" / "train_02_with_attacks" / "copy.csv")
    shutil.copy(train, source / "set_01" / "test_05_suppress" / "leak.csv")
    out = tmp_path / "data"
    done = imported(source, out)
    copy = "train_02_with_attacks/copy.csv has the same bytes as train_01_attack_free/set_01_train_01_attack_free_0.csv"
    leak = ("LEAKAGE: train_01_attack_free/set_01_train_01_attack_free_0.csv (training) and "
            "test_05_suppress/leak.csv (test) are byte-identical")
    assert copy in done.stderr and leak in done.stderr
    shown = kdgat("data", "info", str(out / "set_01"), cwd=tmp_path)
    assert shown.returncode == 0 and copy in shown.stderr and leak in shown.stderr
    assert "same bytes as train_01_attack_free/set_01_train_01_attack_free_0.csv: read once" in shown.stdout
    assert ", 1 read once)" in shown.stdout.splitlines()[-1]
    record = json.loads((out / "set_01" / "import.json").read_text())
    assert record["overlaps"]["leaks"] == [["train_01_attack_free/set_01_train_01_attack_free_0.csv",
                                           "test_05_suppress/leak.csv"]]


def test_data_info_fails_when_any_file_is_unusable(made, tmp_path):
    out = tmp_path / "data"
    imported(made["v15"][0], out, "--dataset", "set_02")
    broken = out / "set_02" / "test_02_unknown_vehicle_known_attack" / "broken.csv"
    broken.write_text("this is not a CAN file\n")
    done = kdgat("data", "info", str(out / "set_02"), cwd=tmp_path)
    assert done.returncode == 1
    assert "total: 7 files (6 usable)" in done.stdout and "1 of 7 files" in done.stderr and "broken.csv" in done.stderr
    assert done.stdout.startswith("imported by kdgat data import from can-train-and-test v1.5")


@pytest.mark.slow
def test_one_epoch_of_training_on_every_imported_dataset(made, tmp_path):
    out = tmp_path / "data"
    imported(made["car_hacking"][0], out)
    imported(made["survival"][0], out, "--dataset", "hcrl_sa,hcrl_sa_soul")
    v15 = tmp_path / "v15"
    shutil.copytree(made["v15"][0], v15)
    shutil.copy(v15 / "set_01" / "train_02_with_attacks" / "set_01_train_02_with_attacks_0.csv",
                v15 / "set_01" / "test_06_masquerade" / "again.csv")  # a leak, to be in the training log
    imported(v15, tmp_path / "v15data")
    datasets = {"hcrl_ch": out / "hcrl_ch", "hcrl_sa": out / "hcrl_sa", "hcrl_sa_soul": out / "hcrl_sa_soul",
                **{name: tmp_path / "v15data" / name for name in ("hcrl_ch", "hcrl_sa", "set_01", "set_02")}}
    for name, path in datasets.items():
        base = "hcrl_sa" if name.startswith("hcrl_sa") else name
        done = run_train("pipeline=custom", "pipeline.presets=[gat_normal]", f"dataset={base}",
                         f"dataset.path={path}", "train.max_epochs=1", "progress=false",
                         f"paths.artifacts={tmp_path / 'runs' / path.parent.name / name}", cwd=tmp_path, timeout=600)
        assert done.returncode == 0, f"{path}: {done.stderr[-3000:]}"
        metrics = json.loads(next((tmp_path / "runs" / path.parent.name / name).rglob("metrics.json")).read_text())
        scenarios = {"test_" + p.name.split("_", 2)[2] for p in path.iterdir() if p.name.startswith("test_")}
        assert {key for key in metrics["splits"] if key.startswith("test_")} == scenarios  # evaluated on each
    logs = [p.read_text() for p in tmp_path.glob("outputs/*/*/train.log")]
    assert sum("LEAKAGE" in log and "test_06_masquerade/again.csv" in log for log in logs) == 1
