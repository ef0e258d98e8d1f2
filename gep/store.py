"""The output directory: runs published whole or not at all, one writer at a time, a record of every run.

Layout of an output directory ``OUT``::

    OUT/extent, OUT/services, OUT/gep      symlinks to .gep/current/<dataset>: what readers glob
    OUT/.gep/current                       symlink to versions/<run_id>: the published version
    OUT/.gep/previous                      symlink to the version published before it (kept for readers in flight)
    OUT/.gep/versions/<run_id>/<dataset>/year=Y/county_code=C/part-0.parquet
    OUT/.gep/versions/<run_id>/manifest.json   each partition: the run that wrote it, its input key, rows
    OUT/.gep/lock                          flock of the run writing OUT (released by the kernel if it dies)
    OUT/runs/<run_id>.parquet              the record of every run (dataset "runs" of gep/vocabulary.py)
    OUT/assessments/<baseline>-<year>/     an assessment's tables (gep assess), a symlink swapped atomically

A run builds its version beside the published one: the partitions it does not recompute are hard
links to the published files (no copies), its own are new files, every file and folder fsynced.
Publishing is one atomic rename of the ``current`` symlink: whenever the process dies, readers see
the previous run or the new one, never a mix. An unpublished version (a killed or failed run) is
removed by the next run; versions older than ``previous`` are removed after each publication.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gep import vocabulary
from gep.errors import OutputError, OutputLockedError

META = ".gep"
RUNS = "runs"
ASSESSMENTS = "assessments"
MANIFEST = "manifest.json"
PART_FILE = "part-0.parquet"
Partition = tuple[str, int, str]  # dataset, year, county code


def partition_path(dataset: str, year: int, county_code: str) -> str:
    """A partition's file, relative to a version (and to the output directory)."""
    return f"{dataset}/year={year}/county_code={county_code}/{PART_FILE}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write a Parquet file and fsync it (readable per the umask: a plain open, not mkstemp)."""
    with open(path, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())


def _replace_atomically(path: Path, write) -> None:
    """Write ``path`` through a hidden temporary file in its folder and one rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _symlink_atomically(target: str, link: Path) -> None:
    tmp = link.with_name(f".{link.name}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)


class OutputStore:
    """One output directory (see the module docstring)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.meta = self.root / META
        self.versions = self.meta / "versions"
        self.runs = self.root / RUNS

    # ------------------------------------------------------------------ lock
    @contextmanager
    def lock(self, holder: dict) -> Iterator[None]:
        """Hold the directory for one run; a second run fails at once, naming the holder. Creating
        the lock also proves the directory writable, before anything is computed."""
        try:
            for d in (self.versions, self.runs):
                d.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.meta / "lock", os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputError(f"{self.root} [output_dir]: cannot write to the output directory: {exc.strerror}\n"
                              "    fix: choose a writable folder (--output DIR or output_dir in the run "
                              "configuration) or fix its permissions. Nothing was computed.") from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
                raise OutputLockedError(f"{self.root} [output_dir]: another gep run is writing this output directory "
                                        f"({other})\n    fix: wait for it to finish and re-run, or write to another "
                                        "folder with --output DIR. Nothing was computed or written.") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder, sort_keys=True).encode(), 0)
            yield
        finally:
            os.close(fd)  # releases the flock (the kernel also does when the process dies)

    # ------------------------------------------------------------------ versions
    def _link_target(self, name: str) -> str | None:
        link = self.meta / name
        return os.readlink(link) if link.is_symlink() else None

    def current_version(self) -> Path | None:
        target = self._link_target("current")
        return self.meta / target if target else None

    def manifest(self) -> dict:
        """The published version's manifest: {"run_id", "partitions": {path: {run_id, input_key, rows}}}."""
        cur = self.current_version()
        if cur is None or not (cur / MANIFEST).is_file():
            return {"run_id": None, "partitions": {}}
        return json.loads((cur / MANIFEST).read_text(encoding="utf-8"))

    def published_partitions(self, dataset: str) -> list[tuple[int, str, dict]]:
        """(year, county code, manifest entry: run_id, input_key, rows) of each published partition
        of a dataset."""
        out = []
        for rel, entry in self.manifest()["partitions"].items():
            name, year, county = rel.split("/")[:3]
            if name == dataset:
                out.append((int(year.removeprefix("year=")), county.removeprefix("county_code="), entry))
        return out

    def _published_files(self) -> dict[str, Path]:
        """Every published partition file by its relative path (from the current version, or from
        the plain folders an earlier gep wrote)."""
        base = self.current_version() or self.root
        found = {}
        for dataset in vocabulary.DATA_DATASETS:
            for f in (base / dataset).glob(f"year=*/county_code=*/{PART_FILE}"):
                found[str(f.relative_to(base))] = f
        return found

    def recover(self) -> None:
        """Remove what an interrupted run left (unpublished versions, temporary files)."""
        keep = {self._link_target("current"), self._link_target("previous")}
        for v in self.versions.iterdir() if self.versions.is_dir() else ():
            if f"versions/{v.name}" not in keep:
                shutil.rmtree(v, ignore_errors=True)
        for tmp in [*self.meta.glob(".*.tmp"), *self.root.glob(".*.tmp"), *self.runs.glob(".*.tmp")]:
            tmp.unlink(missing_ok=True)
        for dataset in vocabulary.DATA_DATASETS:  # an earlier gep wrote plain folders with temporary files
            plain = self.root / dataset
            if plain.is_dir() and not plain.is_symlink():
                for tmp in plain.glob(f"year=*/county_code=*/.{PART_FILE}.tmp-*"):
                    tmp.unlink(missing_ok=True)

    def publish(self, run_id: str, tables: dict[Partition, pa.Table], input_key: str | None) -> list[Path]:
        """Publish a run's partitions together with every other published partition, in one step.

        On any failure (a full disk, a lost mount) nothing is published: the new version is removed,
        the previous outputs stay as they were, and an :class:`OutputError` says what happened.
        """
        new = self.versions / run_id
        ours = {partition_path(*p): t for p, t in tables.items()}
        old = self.manifest()["partitions"]
        try:
            new.mkdir()
            entries, leaves = {}, set()
            for rel, src in self._published_files().items():
                if rel in ours:
                    continue
                dst = new / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                leaves.add(dst.parent)
                try:
                    os.link(src, dst)
                except OSError:  # a file system without hard links
                    shutil.copy2(src, dst)
                entries[rel] = old.get(rel, {"run_id": "unknown (written before run records)"})
            for rel, table in ours.items():
                (new / rel).parent.mkdir(parents=True, exist_ok=True)
                leaves.add((new / rel).parent)
                entries[rel] = {"run_id": run_id, "input_key": input_key, "rows": table.num_rows}
            dirs = set()  # every folder below the version, deepest first when fsynced
            for leaf in leaves:
                while leaf != new and leaf not in dirs:
                    dirs.add(leaf)
                    leaf = leaf.parent
            # Each write ends in an fsync: threads overlap the waits (pyarrow and fsync release the GIL).
            with ThreadPoolExecutor(max_workers=4, thread_name_prefix="gep-write") as pool:
                list(pool.map(lambda item: write_parquet(item[1], new / item[0]), ours.items()))
                list(pool.map(_fsync_dir, sorted(dirs, key=lambda p: -len(p.parts))))
            manifest = {"run_id": run_id, "partitions": dict(sorted(entries.items()))}
            (new / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            _fsync_dir(new)
            _fsync_dir(self.versions)
        except OSError as exc:
            shutil.rmtree(new, ignore_errors=True)
            hint = "free some space" if exc.errno == errno.ENOSPC else "check the folder and its file system"
            raise OutputError(f"{self.root} [output_dir]: writing the outputs failed: {exc}\n    fix: {hint} and "
                              "re-run. Nothing of this run was published; the previous outputs are unchanged.") from exc
        self._swap(run_id)
        return [self.root / rel for rel in ours]

    def _swap(self, run_id: str) -> None:
        """Make ``run_id`` the published version (one rename), then tidy up."""
        before = self._link_target("current")
        _symlink_atomically(f"versions/{run_id}", self.meta / "current")
        _fsync_dir(self.meta)
        for dataset in vocabulary.DATA_DATASETS:
            link = self.root / dataset
            if link.is_dir() and not link.is_symlink():  # plain folders of an earlier gep: now in the version
                aside = self.meta / f"plain-{dataset}-{run_id}"
                os.rename(link, aside)
                shutil.rmtree(aside, ignore_errors=True)
            if not link.is_symlink():
                _symlink_atomically(f"{META}/current/{dataset}", link)
        if before:
            previous = self._link_target("previous")
            _symlink_atomically(before, self.meta / "previous")
            if previous and previous not in (before, f"versions/{run_id}"):
                shutil.rmtree(self.meta / previous, ignore_errors=True)
        _fsync_dir(self.root)

    def is_up_to_date(self, year: int, county_codes: list[str], input_key: str) -> bool:
        """Every partition of these counties and year is published with this input key."""
        parts = self.manifest()["partitions"]
        return all(parts.get(partition_path(d, year, c), {}).get("input_key") == input_key
                   for d in vocabulary.DATA_DATASETS for c in county_codes)

    # ------------------------------------------------------------------ assessments
    def publish_assessment(self, name: str, tables: dict[str, pa.Table],
                           writers: dict[str, Callable[[Path], None]] | None = None) -> list[Path]:
        """Publish an assessment's tables (each as Parquet and as UTF-8 CSV with a BOM, which
        spreadsheet programs read as UTF-8), and the files ``writers`` write (file name -> writer),
        under ``OUT/assessments/NAME/``: written into a new folder beside the published one, then one
        atomic symlink swap (readers see the previous assessment or the new one, never a mix); the
        previous folder is removed after."""
        base = self.root / ASSESSMENTS
        link = base / name
        folder = base / META / f"{name}-{os.getpid()}-{time.time_ns()}"
        try:
            folder.mkdir(parents=True)
            written = []
            for dataset, table in tables.items():
                vocabulary.check(table, dataset)
                write_parquet(table, folder / f"{dataset}.parquet")
                with open(folder / f"{dataset}.csv", "w", encoding="utf-8-sig", newline="") as fh:
                    table.to_pandas().to_csv(fh, index=False)
                    fh.flush()
                    os.fsync(fh.fileno())
                written += [link / f"{dataset}.parquet", link / f"{dataset}.csv"]
            for file_name, write in (writers or {}).items():
                write(folder / file_name)
                with open(folder / file_name, "rb") as fh:
                    os.fsync(fh.fileno())
                written.append(link / file_name)
            _fsync_dir(folder)
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise OutputError(f"{base} [output_dir]: writing the assessment failed: {exc}\n    fix: free some space or "
                              "check the folder, and re-run; the previous assessment is unchanged") from exc
        before = os.readlink(link) if link.is_symlink() else None
        _symlink_atomically(f"{META}/{folder.name}", link)
        _fsync_dir(base)
        if before:
            shutil.rmtree(base / before, ignore_errors=True)
        return written

    # ------------------------------------------------------------------ run records
    def write_record(self, record: dict) -> Path:
        """Write (or replace) a run's record, atomically."""
        table = pa.Table.from_pylist([record], schema=vocabulary.schema("runs"))
        vocabulary.check(table, "runs")
        path = self.runs / f"{record['run_id']}.parquet"
        try:
            _replace_atomically(path, lambda tmp: write_parquet(table, tmp))
        except OSError as exc:
            raise OutputError(f"{path} [run record]: cannot write the run record: {exc}\n    fix: free space or fix "
                              "the output folder's permissions and re-run; no outputs were changed by this "
                              "step.") from exc
        return path

    def records(self) -> pd.DataFrame:
        """Every run record, oldest first."""
        files = sorted(self.runs.glob("*.parquet"))
        if not files:
            return pd.DataFrame(columns=vocabulary.names("runs"))
        return pa.concat_tables([pq.read_table(f) for f in files]).to_pandas().sort_values("started_at")

    def mark_interrupted(self, by_run: str) -> list[dict]:
        """Records still 'running' belong to runs that died (this run holds the lock): mark them."""
        dead = []
        for f in sorted(self.runs.glob("*.parquet")):
            rec = pq.read_table(f).to_pylist()[0]
            if rec["outcome"] == "running" and rec["run_id"] != by_run:
                rec.update(outcome="interrupted", error=f"the process stopped before the run ended (found by run "
                                                        f"{by_run}); nothing of it was published")
                self.write_record(rec)
                dead.append(rec)
        return dead


def holder_info(run_id: str) -> dict:
    return {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
            "started": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")}
