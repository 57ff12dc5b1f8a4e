"""The commands a user types: `kdgat synth`, `kdgat data info`, and train.py's data errors."""

from conftest import kdgat, run_train


def test_synth_then_data_info_reports_each_file_in_its_format(tmp_path):
    out = kdgat("synth", "--like", "hcrl_ch", "--out", "ch", "--frames", "20000", "--seed", "3", "--quiet",
                cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    info = kdgat("data", "info", "ch", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    rows = {line.split()[0]: line.split() for line in info.stdout.splitlines()[1:-1]}
    assert rows["train_01_attack_free/normal_run_data.txt"][1] == "hcrl_log"
    assert all(r[1] == "hcrl_csv" for name, r in rows.items() if not name.startswith("train_01"))
    assert rows["train_01_attack_free/normal_run_data.txt"][3] == "0"  # injected frames
    frames = sum(int(r[2]) for r in rows.values())
    assert 19_000 < frames < 21_000
    assert f"{frames} frames" in info.stdout.splitlines()[-1]


def test_data_info_counts_bad_rows_and_fails_on_nothing_usable(tmp_path):
    good = tmp_path / "ds" / "train_01_attack_free"
    good.mkdir(parents=True)
    (good / "a.csv").write_text("timestamp,arbitration_id,data_field,attack\n"
                                "1.000000,0C1,00F0,0\n1.000100,XYZ,00,0\n1.000200,0C2,,1\n")
    info = kdgat("data", "info", "ds", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "first at line 3" in info.stdout
    assert "2 frames, 1 injected, 1 bad rows" in info.stdout
    (good / "a.csv").write_text("timestamp,arbitration_id,data_field,attack\n1.0,XYZ,00,0\n")
    info = kdgat("data", "info", "ds", cwd=tmp_path)
    assert info.returncode == 1
    assert "no usable frame" in info.stderr


def test_missing_real_dataset_says_where_it_looked_and_what_to_do(tmp_path):
    out = run_train("dataset=hcrl_sa", f"paths.data={tmp_path}/nowhere", cwd=tmp_path, timeout=120)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"looked in {tmp_path}/nowhere/hcrl_sa" in lines[0]
    assert "HCRL Survival Analysis Dataset" in lines[0]
    assert f"kdgat synth --like hcrl_sa --out {tmp_path}/nowhere/hcrl_sa" in lines[0]
    assert not (tmp_path / "experimentruns").exists()


def test_synthetic_made_with_other_settings_is_not_silently_reused(tmp_path):
    made = kdgat("synth", "--like", "synthetic", "--out", "data/synthetic", "--frames", "20000", "--quiet",
                 cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    out = run_train("dataset.synthetic.frames=30000", "progress=false", cwd=tmp_path, timeout=120)
    assert out.returncode == 1
    assert "was generated with" in out.stderr and "remove the folder" in out.stderr


def test_pipelines_lists_stages_needs_and_default_resources(tmp_path):
    out = kdgat("pipelines", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    blocks = {b.splitlines()[0].rstrip(":"): b for b in out.stdout.strip().split("\n\n")}
    assert set(blocks) == {"curriculum_only", "custom", "student", "supervised_only", "teacher"}
    fusion = next(line.split() for line in blocks["teacher"].splitlines() if line.split()[0] == "fusion")
    assert fusion == ["fusion", "fusion", "autoencoder,curriculum", "-", "10:00:00", "96G", "16", "1"]
    distil = next(line for line in blocks["student"].splitlines() if line.split()[0] == "distillation")
    assert "teacher (curriculum)" in distil and "08:00:00" in distil
