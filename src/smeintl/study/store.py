"""The output folder of a study: atomic writes, one file per finished (or failed)
replication in ``reps/``, the check that a folder holds this very study, and which
replications are finished."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .config import RESULT_COLUMNS, Study, StudyError, Task

_REP_RE = re.compile(r"^(fixed|sbc)-c(\d+)-r(\d+)\.csv$")
_ERR_RE = re.compile(r"^(fixed|sbc)-c(\d+)-r(\d+)\.error\.json$")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _rows_csv(rows: list[dict]) -> str:
    df = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    return df.to_csv(index=False, lineterminator="\n")


def _write_result(out: Path, result: Mapping[str, Any]) -> str:
    """Write a worker's result into ``out/reps``; returns 'ok' or 'failed'."""
    task: Task = result["task"]
    reps = out / "reps"
    meta = dict(result.get("meta", {}))
    meta.update({"task": task.name, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    if "rows" in result:
        meta["status"] = "ok"
        _atomic_write(reps / f"{task.name}.meta.json", json.dumps(meta, default=str) + "\n")
        _atomic_write(reps / f"{task.name}.csv", _rows_csv(result["rows"]))
        err = reps / f"{task.name}.error.json"
        if err.exists():
            err.unlink()
        return "ok"
    meta["status"] = "failed"
    _atomic_write(reps / f"{task.name}.meta.json", json.dumps(meta, default=str) + "\n")
    payload = {"task": task.name, "error": result.get("error", ""), "traceback": result.get("traceback", ""),
               **{k: v for k, v in meta.items() if k not in ("task",)}}
    _atomic_write(reps / f"{task.name}.error.json", json.dumps(payload, indent=2, default=str) + "\n")
    return "failed"


def _portable(path: str) -> str:
    """A file's path as a record that means the same on another machine: a bundled file
    as ``bundled:<name>``, a file under the working folder relative to it, else as is (the
    instrument's hash and its copy ``instrument.toml`` identify it in any case)."""
    from ..resources import bundled, bundled_names

    p = Path(path)
    if p.name in bundled_names() and p.resolve() == bundled(p.name).resolve():
        return f"bundled:{p.name}"
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _prepare_out(study: Study, out: Path) -> None:
    """Create the folder, or check that it holds results of this very study."""
    info_path = out / "study.json"
    if out.exists() and any(out.iterdir()):
        if not info_path.exists():
            raise StudyError(str(out), [
                "the output folder exists, is not empty and is not a study folder (no study.json); "
                "choose another --out"], what="cannot use output folder")
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StudyError(str(out), [f"study.json is unreadable ({exc})"], what="cannot use output folder") from None
        if info.get("hash") != study.hash:
            raise StudyError(str(out), [
                f"it holds results of another study configuration (hash {str(info.get('hash'))[:12]}, "
                f"study {info.get('source')!r}); {study.source} has hash {study.hash[:12]}. Seed, grid, kinds, "
                "fit and sbc settings and the instrument must be unchanged to resume (only replications may "
                "grow); choose another --out"], what="cannot resume in output folder")
    (out / "reps").mkdir(parents=True, exist_ok=True)
    for tmp in (out / "reps").glob(".*.tmp"):  # left by an interrupted run
        tmp.unlink()
    from ..measurement import versions

    info = {
        "name": study.name,
        "description": study.description,
        "source": study.source,
        "instrument": _portable(study.instrument_path),
        "instrument_hash": study.instrument.hash,
        "hash": study.hash,
        "seed": study.seed,
        "replications": study.replications,
        "kinds": list(study.kinds),
        "n_conditions": int(len(study.conditions)),
        "n_tasks": len(study.tasks()),
        "config": study.config(),
        "versions": versions(),
    }
    _atomic_write(info_path, json.dumps(info, indent=2, default=str) + "\n")
    _atomic_write(out / "study.toml", study.text)
    _atomic_write(out / "instrument.toml", study.instrument.text)


def finished_tasks(study: Study, out: Path) -> set[Task]:
    """The tasks of ``study`` with a replication file in ``out/reps``."""
    have = set()
    reps = Path(out) / "reps"
    if not reps.exists():
        return have
    wanted = set(study.tasks())
    for p in reps.iterdir():
        m = _REP_RE.match(p.name)
        if m:
            t = Task(m.group(1), int(m.group(2)), int(m.group(3)))
            if t in wanted:
                have.add(t)
    return have


#: pandas >= 3 parses floats exactly by default (and deprecates the option)
_ROUND_TRIP = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}


def _read_rep(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, **_ROUND_TRIP, keep_default_na=False, na_values=[""],
                     dtype={"design": str, "status": str, "kind": str, "family": str, "quantity": str,
                            "message": str})
    df["message"] = df["message"].fillna("")
    return df
