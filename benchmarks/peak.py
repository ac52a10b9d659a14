"""The peak resident memory of one benchmark child: its own, not its parent's.

``ru_maxrss`` of a child process (``os.wait4``, ``RUSAGE_CHILDREN``, or ``RUSAGE_SELF`` read
in the child) counts the parent that started it: Linux carries the high-water mark of the
parent's address space through ``fork`` or ``vfork`` and ``exec`` into the child's maximum,
so a child started by a benchmark parent of 900 MB reports at least 900 MB however little it
uses. ``VmHWM`` in ``/proc/self/status`` is the high-water mark of the process's own address
space, which ``exec`` starts afresh.

:func:`wrap` turns a Python command (``python -m module ...``, ``python -c code ...`` or
``python script ...``) into one that runs the same program and, at its exit, writes its
``VmHWM`` to a file; :func:`read_mb` reads it back. Where ``/proc`` is missing (not Linux)
the file holds ``ru_maxrss`` instead, which may count the parent as above.

The wrapped program's own subprocesses are not counted (``smeintl run``'s second process,
a study's Dask workers).
"""

from __future__ import annotations

from pathlib import Path

#: run by ``python -c``: argv[1] the peak file, then the command's own arguments
WRAPPER = """\
import atexit, runpy, sys
peak_file = sys.argv[1]
def _peak():
    kb = None
    try:
        with open("/proc/self/status") as f:
            kb = next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), None)
    except OSError:
        pass
    if kb is None:
        import resource
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(peak_file, "w") as f:
        f.write(str(kb))
atexit.register(_peak)
args = sys.argv[2:]
if args[0] == "-m":
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
elif args[0] == "-c":
    sys.argv = ["-c", *args[2:]]
    exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
else:
    sys.argv = list(args)
    runpy.run_path(args[0], run_name="__main__")
"""


def wrap(cmd: list[str], peak_file: str | Path) -> list[str]:
    """``cmd`` (its first element a Python interpreter) run so that it writes its own peak
    resident memory, in KiB, to ``peak_file`` when it exits."""
    return [cmd[0], "-c", WRAPPER, str(peak_file), *cmd[1:]]


def read_mb(peak_file: str | Path) -> float | None:
    """The peak written by a :func:`wrap`-ped command, in MB (MiB); None if it wrote none
    (killed, or ended by ``os._exit``)."""
    try:
        return int(Path(peak_file).read_text()) / 1024.0
    except (OSError, ValueError):
        return None
