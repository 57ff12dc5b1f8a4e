"""Sniffing a CAN file's format stays light: detect_format and head_problem load no numpy, pandas or pyarrow
(checked in a fresh process, as the launcher runs them)."""

from __future__ import annotations


def test_sniffing_imports_no_numpy_pandas_or_arrow(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "a.csv"
    path.write_text("timestamp,arbitration_id,data_field,attack\n1.0,0C1,00,0\n")
    code = (
        "import sys; from kdgat.data.formats import detect_format, head_problem; "
        f"assert detect_format({str(path)!r}) == 'can_train_and_test'; assert head_problem({str(path)!r}) is None; "
        "heavy = [m for m in ('numpy', 'pandas', 'pyarrow') if m in sys.modules]; "
        "sys.exit(f'imported {heavy}' if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
