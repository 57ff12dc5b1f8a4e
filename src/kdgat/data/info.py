"""``kdgat data info``: what a dataset folder holds, file by file, and whether it can be trained on.

Each file is counted a block at a time (kdgat.data.formats.count_frames),
so a folder of any size is looked at in bounded memory. A file with no
usable row makes the dataset unusable (training would refuse it), which the
command's exit status says. An imported folder also says where it came
from (its import.json), and byte-identical files are named as training
would name them: copies read once, and leaks between training and test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kdgat.data.duplicates import Overlaps, find_overlaps
from kdgat.data.formats import count_frames
from kdgat.data.layout import discover
from kdgat.data.provenance import describe, read_record
from kdgat.data.windows import count_windows
from kdgat.errors import KdgatError


@dataclass
class Info:
    root: Path
    rows: list[tuple] = field(default_factory=list)  # file, format, frames, injected, bad rows, note
    unusable: list[str] = field(default_factory=list)  # why each unusable file is
    windows: int = 0
    provenance: list[str] = field(default_factory=list)
    overlaps: Overlaps = field(default_factory=Overlaps)


def dataset_info(folder: Path, window: int, stride: int) -> Info:
    layout = discover(Path(folder))
    info = Info(root=layout.root, overlaps=find_overlaps(layout))
    record = read_record(layout.root)
    if record:
        info.provenance = describe(record)
    for path in layout.files():
        name = path.relative_to(layout.root).as_posix()
        try:
            report = count_frames(path)
        except KdgatError as err:
            info.rows.append((name, "unusable", 0, 0, "-", str(err)))
            info.unusable.append(str(err))
            continue
        if name in info.overlaps.read_once:
            note = f"same bytes as {info.overlaps.read_once[name]}: read once"
        else:
            info.windows += count_windows(report.frames, window, stride)
            note = (f"first at line {report.bad_examples[0][0]}: {report.bad_examples[0][1]}"
                    if report.bad_examples else "")
        info.rows.append((name, report.format, report.frames, report.injected, report.bad_rows, note))
    return info


def render(info: Info, window: int, stride: int) -> str:
    from hydra_plugins.kdgat_chain_launcher import format_table

    read = [r for r in info.rows if r[0] not in info.overlaps.read_once]
    usable = sum(r[1] != "unusable" for r in info.rows)
    once = len(info.rows) - len(read)
    table = format_table(("file", "format", "frames", "injected", "bad rows", ""), info.rows, right=(2, 3, 4))
    total = (f"total: {len(info.rows)} files ({usable} usable{f', {once} read once' if once else ''}), "
             f"{sum(r[2] for r in read)} frames, {sum(r[3] for r in read)} injected, "
             f"{sum(r[4] for r in read if r[4] != '-')} bad rows, {info.windows} windows of {window} (stride {stride})")
    return "\n".join([*info.provenance, table, total])
