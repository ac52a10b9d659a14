"""The command line of a study: ``smeintl study`` and ``python -m smeintl.study``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from ..spec import SpecError
from .config import StudyError, load_study
from .results import collect
from .runner import run_study
from .store import _prepare_out, finished_tasks


def add_study_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the arguments of ``smeintl study`` to a parser (for the main CLI)."""
    p.add_argument("study", help="study file (TOML), or the name of a bundled one: study_tiny.toml, "
                   "study_example.toml")
    p.add_argument("--out", default=None, help="output folder (default reports/study-<name>); an existing "
                   "folder of the same study is resumed")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a Dask scheduler (tcp://host:8786); default: a local cluster")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: the number of cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures")
    p.add_argument("--no-retry-failed", action="store_true", help="do not rerun failed replications")
    p.add_argument("--dry-run", action="store_true", help="validate, list the conditions and stop")
    p.add_argument("--collect-only", action="store_true",
                   help="rebuild the tables and figures from finished replications; run nothing")
    return p


def cmd_study(args: argparse.Namespace) -> int:
    """Run ``smeintl study`` from parsed arguments (raises :class:`StudyError`)."""
    study = load_study(args.study)
    if args.dry_run:
        tasks = study.tasks()
        print(f"study {study.name} ({study.source}): instrument {study.instrument.name}, seed {study.seed}, "
              f"kinds {', '.join(study.kinds)}, {len(study.conditions)} condition(s) x {study.replications} "
              f"replication(s) = {len(tasks)} replication(s) in all (design fixed: recovery/comparison; sbc)")
        print(study.conditions.to_string())
        print(f"fit: {json.dumps(dict(study.fit))}")
        if "sbc" in study.kinds:
            print(f"sbc: {json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in study.sbc.items()})}; "
                  f"SBC conditions {study.sbc_conditions()}")
        return 0
    if args.collect_only:
        out = Path(args.out) if args.out else Path("reports") / f"study-{study.name}"
        if not (out / "study.json").exists():
            raise StudyError(str(out), ["not a study folder (no study.json)"], what="cannot collect")
        _prepare_out(study, out)
        res = collect(study, out, figures=not args.no_figures)
        res.n_skipped = len(finished_tasks(study, out))
        print(res.text())
        return 0
    res = run_study(study, args.out, scheduler=args.scheduler, workers=args.workers, progress=not args.no_progress,
                    retry_failed=not args.no_retry_failed, figures=not args.no_figures)
    print(res.text())
    return 1 if res.n_failed else 0


def study_main(argv: Sequence[str] | None = None) -> int:
    """``python -m smeintl.study STUDY.toml [--out DIR] [--scheduler ADDRESS] [--workers N]``.

    Exit status: 0 all replications finished, 1 some failed (recorded), 2 a user
    error (bad study file, wrong output folder, unreachable scheduler), 130 interrupted.
    """
    parser = add_study_arguments(argparse.ArgumentParser(
        prog="smeintl study", description="run a simulation study (recovery, SBC, method comparison)"))
    args = parser.parse_args(argv)
    try:
        return cmd_study(args)
    except SpecError as exc:
        print(f"smeintl study: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("smeintl study: interrupted; finished replications are kept, rerun to resume", file=sys.stderr)
        return 130
