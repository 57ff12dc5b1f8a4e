"""``kdgat data import``: a download of a real dataset made into kdgat's dataset folders.

kdgat.data.distributions tells which download a folder is and plans each
dataset folder; this module carries the plans out:

- a file readable as it is gets linked, never copied: a hard link, else (another
  filesystem) a symbolic link, and the summary says which;
- a file the download leaves unsplit is cut in two (kdgat.data.splitting), each part written once;
- an archive member is extracted (py7zr);
- every file is counted on the way (frames, injected, bad rows) and hashed, in bounded memory,
  and ``import.json`` records it all (kdgat.data.provenance).

Every file lands atomically (a hidden temporary name, then a rename), and a
file that would come out the same is left alone, so a second import of the
same download changes nothing. A folder made from another download, or
holding files no import made, is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

from hydra_plugins.kdgat_chain_launcher import atomic_write, unfinished_writes
from kdgat.atomic import sha256_file
from kdgat.data.distributions import DISTRIBUTIONS, TRAIN_FRACTION, Plan, plan_import
from kdgat.data.distributions.plan import visible
from kdgat.data.duplicates import Overlaps, find_overlaps
from kdgat.data.formats import count_frames
from kdgat.data.provenance import read_record, write_record
from kdgat.data.splitting import find_cut, write_first, write_second
from kdgat.errors import KdgatError

log = logging.getLogger(__name__)

HARD, SYMBOLIC = "hard link", "symbolic link"
FIRST, REST, EXTRACTED = "first part of a split", "rest of a split", "extracted"
TEMP_PREFIX = ".kdgat-import-"


@dataclass
class Imported:
    """What an import made of one dataset folder."""

    plan: Plan
    folder: Path
    files: dict[str, dict[str, Any]]  # the folder's files (relative) -> how, from, sha256 and counts
    left_out: dict[str, str]
    changed: int  # files written, replaced or removed (0 for an import that found everything in place)
    overlaps: Overlaps


def import_download(source: Path, out: Path, names: list[str] | None = None,
                    train_fraction: float = TRAIN_FRACTION) -> list[Imported]:
    """Make the dataset folders of the download at ``source`` under ``out`` (kdgat's ``paths.data``)."""
    plans = plan_import(Path(source), names, train_fraction)
    for plan in plans:
        _check_folder(Path(out) / plan.dataset, plan)
    return [_carry_out(plan, Path(out) / plan.dataset) for plan in plans]


def _check_folder(folder: Path, plan: Plan) -> None:
    """Refuse to mix two downloads in one folder, or to touch files an import did not make."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise KdgatError(f"{folder} exists and is not a folder; remove it or import elsewhere with --out")
    record = read_record(folder)
    title = DISTRIBUTIONS[plan.distribution].TITLE
    if record is None:
        if any(p.name != "import.json" for p in visible(folder)):
            raise KdgatError(f"{folder} already holds files that kdgat data import did not make; remove it, or "
                             f"import {title} into another folder with --out")
        return
    if record.get("distribution") != plan.distribution:
        raise KdgatError(f"{folder} holds {record.get('title')} (imported from {record.get('source')}); importing "
                         f"{title} there would mix two different datasets: remove {folder} first, or import "
                         f"into another folder with --out")


def _carry_out(plan: Plan, folder: Path) -> Imported:
    folder.mkdir(parents=True, exist_ok=True)
    for stale in [*folder.rglob(TEMP_PREFIX + "*"), *_unfinished_writes(folder, plan)]:  # an import was killed
        shutil.rmtree(stale) if stale.is_dir() and not stale.is_symlink() else stale.unlink()
    old = read_record(folder) or {}
    previous = old.get("files", {})
    same_split = (old.get("split") or {}).get("train_fraction") == plan.train_fraction
    files: dict[str, dict[str, Any]] = {}
    left_out = dict(plan.left_out)
    changed = 0

    def source_name(path: Path) -> str:
        return path.relative_to(plan.source).as_posix()

    def kept(dests: list[str], source_sha256: str, same_rule: bool = True) -> bool:
        """Whether an earlier import made these files from the same source bytes and they are still whole:
        then they are left as they are (no temporary file, no directory touched)."""
        entries = [previous.get(dest) for dest in dests]
        if not same_rule or not all(e and e.get("source_sha256", e["sha256"]) == source_sha256 for e in entries):
            return False
        if not all(_sha256_or_none(folder / dest) == e["sha256"] for dest, e in zip(dests, entries)):
            return False
        files.update({dest: e for dest, e in zip(dests, entries)})
        return True

    for dest, source in sorted(plan.links.items()):
        if _link_in_place(source, folder / dest) and kept([dest], sha256_file(source)):
            continue
        digest = hashlib.sha256()
        try:
            report = count_frames(source, digest=digest)
        except KdgatError as err:
            left_out[source_name(source)] = f"unusable: {err}"
            continue
        how, did = _link(source, folder / dest)
        changed += did
        files[dest] = _entry(how, source_name(source), digest.hexdigest(), report.format, report)
    for split in plan.splits:
        if kept([split.train, split.test], sha256_file(split.source), same_split):
            continue
        try:
            cut = find_cut(split.source, plan.train_fraction)
        except KdgatError as err:
            left_out[source_name(split.source)] = f"unusable: {err}"
            continue
        for dest, write, counts, how in ((split.train, write_first, cut.first, FIRST),
                                         (split.test, write_second, cut.second, REST)):
            sha, did = _place(folder / dest, partial(write, split.source, cut))
            changed += did
            files[dest] = _entry(how, source_name(split.source), sha, cut.format, counts, cut.sha256)
    for dest, (archive, member) in sorted(plan.extracts.items()):
        archive_sha256 = sha256_file(archive)
        if kept([dest], archive_sha256):
            continue
        try:
            sha, did, report = _extract(archive, member, folder / dest)
        except KdgatError as err:
            left_out[f"{source_name(archive)}:{member}"] = f"unusable: {err}"
            continue
        changed += did
        files[dest] = _entry(EXTRACTED, f"{source_name(archive)}:{member}", sha, report.format, report,
                             archive_sha256)
    changed += _remove_stale(folder, set(old.get("files", {})) - set(files))

    overlaps = _overlaps(folder, files)
    record = {
        "dataset": plan.dataset,
        "distribution": plan.distribution,
        "title": DISTRIBUTIONS[plan.distribution].TITLE,
        "source": str(plan.source),
        "split": None if plan.split_rule is None else {"rule": plan.split_rule,
                                                       "train_fraction": plan.train_fraction},
        "files": files,
        "left_out": left_out,
        "overlaps": overlaps.as_dict(),
    }
    changed += write_record(folder, record)
    for name, why in sorted(left_out.items()):
        log.warning("%s: left out %s: %s", plan.dataset, name, why)
    for message in overlaps.messages():
        log.warning("%s: %s", plan.dataset, message)
    return Imported(plan, folder, files, left_out, changed, overlaps)


def _entry(how: str, source: str, sha256: str, fmt: str, counts, source_sha256: str | None = None) -> dict[str, Any]:
    entry = {"how": how, "from": source, "sha256": sha256, "format": fmt, "frames": counts.frames,
             "injected": counts.injected, "bad_rows": counts.bad_rows}
    if source_sha256 is not None:  # a file made from another (split, extracted): the bytes it was made from
        entry["source_sha256"] = source_sha256
    return entry


def _sha256_or_none(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def _link_in_place(source: Path, dest: Path) -> str | None:
    """The kind of link ``dest`` is to ``source``, or None when it is no link to it."""
    source = source.resolve()
    if dest.is_symlink():
        return SYMBOLIC if Path(os.readlink(dest)) == source else None
    return HARD if dest.exists() and os.path.samefile(dest, source) else None


def _unfinished_writes(folder: Path, plan: Plan) -> list[Path]:
    """What writes of split parts killed mid-way left beside them."""
    return [stale for split in plan.splits for name in (split.train, split.test)
            for stale in unfinished_writes(folder / name)]


def _link(source: Path, dest: Path) -> tuple[str, bool]:
    """(kind of link, whether anything changed): a link already in place is kept as it is."""
    how = _link_in_place(source, dest)
    if how is not None:
        return how, False
    source = source.resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=dest.parent))  # a name no other import uses
    try:
        temporary = work / dest.name
        try:
            os.link(source, temporary)
            how = HARD
        except OSError:  # another filesystem, or one without hard links
            os.symlink(source, temporary)
            how = SYMBOLIC
        os.replace(temporary, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return how, True


class _Unchanged(Exception):
    """Raised inside atomic_write to drop a written file whose bytes are in place already."""


def _same_bytes(dest: Path, size: int, sha256: str) -> bool:
    """Whether ``dest`` already holds these bytes as a file of its own (a link into the download is
    replaced, never written into)."""
    return (dest.is_file() and not dest.is_symlink() and dest.stat().st_nlink == 1
            and dest.stat().st_size == size and sha256_file(dest) == sha256)


def _place(dest: Path, write: Callable[[Any, Any], None]) -> tuple[str, bool]:
    """Write a file through ``write(file, digest)`` with the one atomic writer; (its sha256, whether it
    changed anything): a file that would come out the same is left alone."""
    digest = hashlib.sha256()
    try:
        with atomic_write(dest, "wb") as fh:
            write(fh, digest)
            fh.flush()
            if _same_bytes(dest, fh.tell(), digest.hexdigest()):
                raise _Unchanged
    except _Unchanged:
        return digest.hexdigest(), False
    return digest.hexdigest(), True


def _extract(archive: Path, member: str, dest: Path):
    """Extract one member of a 7z archive to ``dest``: (sha256, changed, its ReadReport). py7zr writes it in
    a private folder beside ``dest``; it is flushed to disk and renamed into place, unless the same bytes
    are there already."""
    how = f"extract it yourself (7z x {archive.name}, or any 7-Zip tool) and import again"
    try:
        import py7zr
    except ImportError:
        raise KdgatError(f"py7zr is not installed, so {archive} cannot be read here: {how}") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + "extract-", dir=dest.parent))
    try:
        try:
            with py7zr.SevenZipFile(archive, "r") as zipped:
                inside = [n for n in zipped.getnames() if Path(n).name.lower() == member.lower()]
                if not inside:
                    raise KdgatError(f"{archive} holds no {member}")
                zipped.extract(path=work, targets=[inside[0]])
        except (py7zr.exceptions.ArchiveError, OSError, ValueError) as err:
            raise KdgatError(f"{archive} cannot be extracted ({err}): {how}") from None
        extracted = work / inside[0]
        digest = hashlib.sha256()
        report = count_frames(extracted, digest=digest)
        if _same_bytes(dest, extracted.stat().st_size, digest.hexdigest()):
            return digest.hexdigest(), False, report
        with open(extracted, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(extracted, dest)
        return digest.hexdigest(), True, report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _remove_stale(folder: Path, names: set[str]) -> int:
    """Files an earlier import made that this one does not (another split fraction, a file left out)."""
    removed = 0
    for name in sorted(names):
        path = folder / name
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed += 1
        if path.parent != folder and path.parent.is_dir() and not any(path.parent.iterdir()):
            path.parent.rmdir()
    return removed


def _overlaps(folder: Path, files: dict[str, dict[str, Any]]) -> Overlaps:
    from kdgat.data.layout import discover

    try:
        layout = discover(folder)
    except KdgatError as err:
        log.warning("%s: %s", folder.name, err)
        return Overlaps()
    return find_overlaps(layout, {folder / name: entry["sha256"] for name, entry in files.items()})


def summary(imported: Imported) -> str:
    """The table the command prints: per folder its files, frames, injected frames, bad rows and origin."""
    from hydra_plugins.kdgat_chain_launcher import format_table

    plan = imported.plan
    groups: dict[str, list[dict[str, Any]]] = {}
    for name, entry in sorted(imported.files.items(), key=lambda item: (not item[0].startswith("train_"), item[0])):
        groups.setdefault(name.split("/")[0], []).append(entry)
    rows = []
    for folder, entries in groups.items():
        made = sorted({_made_by(entry, plan) for entry in entries})
        rows.append((folder, len(entries), sum(e["frames"] for e in entries), sum(e["injected"] for e in entries),
                     sum(e["bad_rows"] for e in entries), "; ".join(made)))
    total = ("total", *(sum(row[k] for row in rows) for k in range(1, 5)), "")
    table = format_table(("folder", "files", "frames", "injected", "bad rows", "made by"), [*rows, total],
                         right=(1, 2, 3, 4))
    title = DISTRIBUTIONS[plan.distribution].TITLE
    links = sorted({e["how"] for e in imported.files.values() if e["how"] in (HARD, SYMBOLIC)})
    said = {(HARD,): "hard links", (SYMBOLIC,): "symbolic links (the download is on another filesystem)"}
    linked = sum(e["how"] in (HARD, SYMBOLIC) for e in imported.files.values())
    lines = [f"{plan.dataset}: {title} at {plan.source} -> {imported.folder}", table,
             f"linked {linked} files" + (f" as {said.get(tuple(links), 'hard and symbolic links')}" if linked else "")
             + f"; {imported.changed} files written, replaced or removed"
             + ("" if imported.changed else " (it was imported already)")]
    if plan.split_rule:
        lines.append(f"split: {plan.split_rule}")
    return "\n".join(lines)


def _made_by(entry: dict[str, Any], plan: Plan) -> str:
    how = entry["how"]
    if how in (HARD, SYMBOLIC):
        return f"linked ({how.split()[0]})"
    if how == EXTRACTED:
        return f"extracted from {entry['from'].split(':')[0]}"
    share = f"{plan.train_fraction:.0%}"
    return f"first {share} of each file" if how == FIRST else f"the rest after the first {share}"
