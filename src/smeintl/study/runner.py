"""Running a study: every unfinished replication on a local Dask cluster or on the
cluster at a scheduler address; each result written by the client as it returns
(resume skips finished replications), the tables rebuilt at the end."""

from __future__ import annotations

import os
import sys
import time
import traceback
import warnings
from pathlib import Path

from .config import Study, StudyError, load_study
from .replication import run_replication
from .results import StudyRun, collect
from .store import _prepare_out, _write_result, finished_tasks


def _check_workers(client, study: Study) -> None:
    """Every worker must import smeintl (the replications run there)."""
    import importlib.metadata as md

    try:
        got = client.run(md.version, "smeintl")
    except Exception as exc:  # noqa: BLE001
        raise StudyError(str(getattr(client, "scheduler", None) and client.scheduler.address), [
            f"a worker cannot import smeintl ({type(exc).__name__}: {exc}); install the same smeintl, PyMC "
            "and NumPy on every worker"], what="cannot run on cluster") from None
    mine = md.version("smeintl")
    other = {v for v in got.values() if v != mine}
    if other:
        warnings.warn(f"workers run smeintl {sorted(other)}, this process {mine}: results may differ", stacklevel=2)


def run_study(
    study: Study | str | Path,
    out: str | Path | None = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    client=None,
    progress: bool = True,
    retry_failed: bool = True,
    figures: bool = True,
    connect_timeout: float = 30.0,
) -> StudyRun:
    """Run every unfinished replication of ``study`` and write the tables into ``out``.

    ``out`` defaults to ``reports/study-<name>``.  Replications already finished there
    (``reps/*.csv``) are skipped; failed ones (``*.error.json``) are retried unless
    ``retry_failed=False``.  Execution: ``client`` (a ``dask.distributed.Client``) if
    given; else the Dask scheduler at ``scheduler`` (``tcp://host:port``); else a
    ``LocalCluster`` of ``workers`` single-threaded processes (default: the number of
    cores) on 127.0.0.1, closed at the end.  A progress bar (tqdm, on stderr) counts
    finished replications.  The tables are rebuilt from the replication files at the
    end (:func:`collect`), also when nothing was left to run.  ``connect_timeout``:
    seconds to wait for the scheduler.
    """
    t0 = time.perf_counter()
    if not isinstance(study, Study):
        study = load_study(study)
    out = Path(out) if out is not None else Path("reports") / f"study-{study.name}"
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise StudyError(study.source, [f"--workers: a whole number >= 1, got {workers!r}"], what="invalid option for")
    if scheduler and workers is not None:
        raise StudyError(study.source, ["--workers applies to the local cluster; with --scheduler the cluster's "
                                        "own workers run the replications"], what="invalid options for")
    _prepare_out(study, out)
    tasks = study.tasks()
    done = finished_tasks(study, out)
    reps = out / "reps"
    pending = [t for t in tasks if t not in done]
    if not retry_failed:
        pending = [t for t in pending if not (reps / f"{t.name}.error.json").exists()]
    n_run = n_failed = 0
    failed: list[str] = []
    if pending:
        n_run, n_failed, failed = _execute(study, out, pending, len(tasks), len(done), scheduler=scheduler,
                                           workers=workers, client=client, progress=progress,
                                           connect_timeout=connect_timeout)
    res = collect(study, out, figures=figures)
    res.n_tasks, res.n_skipped, res.n_run, res.n_failed, res.failed = len(tasks), len(done), n_run, n_failed, failed
    res.seconds = time.perf_counter() - t0
    return res


def _execute(study, out, pending, n_total, n_done, *, scheduler, workers, client, progress, connect_timeout):
    import logging

    from distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    cluster = None
    own_client = client is None
    if client is None:
        if scheduler:
            try:
                client = Client(scheduler, timeout=f"{float(connect_timeout)}s")
            except Exception as exc:  # noqa: BLE001
                raise StudyError(str(scheduler), [f"cannot connect to the Dask scheduler ({type(exc).__name__}: {exc})"],
                                 what="cannot run on") from None
        else:
            n = min(workers or os.cpu_count() or 1, len(pending))
            with warnings.catch_warnings():
                # the scheduler's HTTP server falls back to a free port when 8787 is taken
                warnings.filterwarnings("ignore", message=".*already in use", category=UserWarning)
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
    n_run = n_failed = 0
    failed: list[str] = []
    futures = []
    try:
        _check_workers(client, study)
        study_f = client.scatter(study, broadcast=True, hash=False)
        futures = [
            client.submit(run_replication, study_f, t, key=f"smeintl-study-{study.hash[:16]}-{t.name}", pure=False,
                          retries=0)
            for t in pending
        ]
        by_key = {f.key: t for f, t in zip(futures, pending)}
        bar = tqdm(total=n_total, initial=n_done, desc=f"study {study.name}", unit="rep", disable=not progress,
                   file=sys.stderr, dynamic_ncols=True)
        try:
            for fut in as_completed(futures):
                t = by_key[fut.key]
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. the worker died (KilledWorker)
                    result = {"task": t, "error": f"{type(exc).__name__}: {exc}",
                              "traceback": "".join(traceback.format_exception(exc)), "meta": {}}
                status = _write_result(out, result)
                n_run += 1
                if status == "failed":
                    n_failed += 1
                    failed.append(f"{t.name}: {result.get('error', '')}")
                    bar.set_postfix(failed=n_failed)
                bar.update(1)
                fut.release()
        finally:
            bar.close()
    finally:
        for f in futures:
            if not f.done():
                f.cancel()
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()
    return n_run, n_failed, failed
