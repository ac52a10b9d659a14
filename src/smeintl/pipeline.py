"""The main job (``smeintl run``): survey file to a complete report folder.

Steps: validate the data, deterministic method, fit, diagnostics, predictive
comparison, report.  Everything is written to a temporary folder next to the
target and renamed at the end, so an interrupted or failed run leaves no half
report; an existing report folder is never overwritten without ``--force``; the
input data are only read.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["run_pipeline", "atomic_folder", "Steps"]


@contextmanager
def atomic_folder(target: Path, *, force: bool = False):
    """Yield a temporary folder that replaces ``target`` only when the block succeeds."""
    target = Path(target)
    if target.exists() and not force:
        from .cli import UserError

        raise UserError(f"{target} exists; pass --force to overwrite it (nothing was written)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if target.exists():
        old = target.with_name(f".{target.name}.old-{time.time_ns()}")
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)


class Steps:
    """Announces each step, times it, and records the timings for the manifest."""

    def __init__(self, total: int, stream=sys.stdout):
        self.total = total
        self.k = 0
        self.timings: dict[str, float] = {}
        self.stream = stream

    @contextmanager
    def step(self, name: str):
        self.k += 1
        print(f"[{self.k}/{self.total}] {name} ...", file=self.stream, flush=True)
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.timings[name] = round(dt, 3)
        print(f"[{self.k}/{self.total}] {name} done ({dt:.1f} s)", file=self.stream, flush=True)


def default_out(data_path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{data_path.stem}-{stamp}"


def run_pipeline(args: Any) -> int:
    """Run every step of the analysis; see the module docstring."""
    from .cli import DEFAULT_DATA, DEFAULT_SPEC, _repo_default
    from .data import load_survey
    from .measurement import versions
    from .profiles import run_deterministic
    from .spec import load_spec

    t_all = time.perf_counter()
    spec_path = Path(args.spec) if args.spec else _repo_default(DEFAULT_SPEC)
    data_path = Path(args.data) if args.data else _repo_default(DEFAULT_DATA)
    out = Path(args.out) if args.out else default_out(data_path)
    spec = load_spec(spec_path)
    steps = Steps(total=2)
    with atomic_folder(out, force=args.force) as tmp:
        with steps.step("validate the data"):
            survey = load_survey(data_path, spec)
            print(f"    {survey.n_firms} firms, {int(survey.missing.sum())} missing answers", flush=True)
        with steps.step("deterministic ideal-profile method"):
            det = run_deterministic(survey)
            det.firms.to_csv(tmp / "firms.csv", index=False)
            (tmp / "summary.json").write_text(json.dumps(det.summary, indent=2, default=str) + "\n")
            (tmp / "deterministic.txt").write_text(det.summary_text() + "\n")
        manifest = {
            "smeintl_report": 1,
            "spec_source": str(spec_path),
            "spec_hash": spec.hash,
            "spec_text": spec.text,
            "data_source": str(data_path),
            "data_hash": survey.data_hash,
            "seed": args.seed,
            "quick": bool(args.quick),
            "versions": versions(),
            "timings_s": steps.timings | {"total": round(time.perf_counter() - t_all, 3)},
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print()
    print(det.summary_text())
    print(f"\nreport written to {out}")
    return 0
