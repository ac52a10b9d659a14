"""The main job's command (``smeintl run``): survey file to a complete report folder.

A thin shell around the Python API: the command's options go to
:func:`smeintl.api.analyze` (validate the data, deterministic method, fit, diagnostics,
predictive comparison, robustness, in memory) and the result to
:meth:`smeintl.api.Analysis.write_report`, which writes the folder atomically (a
temporary folder next to the target, renamed at the end, so an interrupted or failed run
leaves no half report).  An existing report folder is refused before any work without
``--force`` (and with ``--force`` only a report folder is replaced: never a file or another
folder); the input data are only read.  SIGTERM is handled like Ctrl-C
(:func:`smeintl.errors.interrupt_signals`), and partial folders of killed runs next to the
target are removed (:func:`smeintl.api.clean_stale_partials`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from .api import Steps, analyze, atomic_folder, ensure_new, read_spec
from .errors import interrupt_signals
from .resources import DEFAULT_DATA, bundled, resolve

__all__ = ["run_pipeline", "atomic_folder", "Steps", "default_out"]


def default_out(data_path: Path) -> Path:
    """``reports/<data file stem>-<timestamp>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{Path(data_path).stem}-{stamp}"


def run_pipeline(args: Any, spec: Any = None) -> int:
    """``smeintl run`` from its parsed options (an argparse Namespace); see the module docstring.
    ``spec``: the instrument (a :class:`~smeintl.spec.Spec`, e.g. built from ``--model``);
    default: read from ``args.spec``."""
    with interrupt_signals():
        data_path = resolve(args.data) if args.data else bundled(DEFAULT_DATA)
        out = Path(args.out) if args.out else default_out(data_path)
        spec = read_spec(args.spec) if spec is None else spec
        ensure_new(out, force=args.force)  # before the work; written only at the end
        analysis = analyze(
            data_path,
            spec=spec,
            seed=args.seed,
            quick=bool(getattr(args, "quick", False)),
            group=not getattr(args, "no_group", False),
            invariance=getattr(args, "invariance", "none"),
            robustness=not getattr(args, "no_robustness", False),
            checks=not getattr(args, "no_checks", False),
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            sampler=args.sampler,
            progress=not getattr(args, "no_progress", False),
            sheet=getattr(args, "sheet", None) or 0,
            encoding=getattr(args, "encoding", None),
        )
        analysis.write_report(out, force=args.force)
    print()
    if analysis.comparison is not None:
        print(analysis.comparison.text())
    else:
        print(f"comparison not run: {analysis.spec.skipped_steps()['comparison']}; the measurement model:")
        print(analysis.fit_summary.text())
    if analysis.failed:
        print("\nWARNING: the fit FAILED its diagnostics; see the warning at the top of the report.", file=sys.stderr)
    print(f"\nreport written to {out} (open {out / 'index.html'})")
    return 0
