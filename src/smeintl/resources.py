"""The files bundled with smeintl: the default instrument, the example survey and its
codebook, the example studies.

They live in the package ``smeintl.bundled`` and are found with ``importlib.resources``,
so they are there in a checkout, an editable install and an installed wheel alike, from
any working folder.

- :func:`bundled` gives the path of one of them (``bundled(DEFAULT_SPEC)``);
- :func:`bundled_names` lists them;
- :func:`resolve` is how the command line and the API read a file name the user gives
  (``--spec``, a survey file, a study file, a study's ``instrument``): the path as given
  (relative to ``base`` when given, else to the working folder) when it exists; else,
  when it is a bare file name of a bundled file (``hitachi.toml``, ``study_tiny.toml``),
  that bundled file; else the path as given, so that "not found" names what the user
  wrote.  ``smeintl study study_tiny.toml`` therefore runs the bundled tiny study from
  any folder, and a study file copied out of the package still finds its instrument.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
from importlib.resources import as_file, files
from pathlib import Path

__all__ = ["BUNDLE", "DEFAULT_DATA", "DEFAULT_SPEC", "bundled", "bundled_names", "resolve"]

#: the package that holds the bundled files
BUNDLE = "smeintl.bundled"
#: the bundled example survey (41 synthetic firms; codebook: the bundled ``README.md``)
DEFAULT_DATA = "hitachi_synthetic.csv"
#: the bundled default instrument
DEFAULT_SPEC = "hitachi.toml"

# Where the package is not a folder on disk (a zip import), ``as_file`` extracts a file
# to a temporary copy that lives until the process ends.
_extracted = contextlib.ExitStack()
atexit.register(_extracted.close)


def bundled_names() -> tuple[str, ...]:
    """The names of the bundled files, sorted (``hitachi.toml``, ...)."""
    return tuple(sorted(
        entry.name for entry in files(BUNDLE).iterdir()
        if entry.is_file() and not entry.name.startswith("__") and not entry.name.endswith((".py", ".pyc"))
    ))


@functools.cache
def bundled(name: str) -> Path:
    """The path of the bundled file ``name`` (one of :func:`bundled_names`), a real file on
    disk; FileNotFoundError names the bundled files when there is no such file."""
    if name not in bundled_names():
        raise FileNotFoundError(f"no bundled file {name!r}; the bundled files are {', '.join(bundled_names())}")
    return _extracted.enter_context(as_file(files(BUNDLE) / name))


def resolve(path: str | Path, base: str | Path | None = None) -> Path:
    """The file a user means by ``path``: ``path`` (relative to ``base`` when given) if it
    exists, else the bundled file of that bare name, else ``path`` as given (see the
    module docstring)."""
    given = Path(path)
    p = given if base is None or given.is_absolute() else Path(base) / given
    try:
        if p.exists() or p.is_symlink():
            return p
    except (OSError, ValueError):  # e.g. a NUL character in the name: not a bundled name either
        return p
    name = str(path)
    if given.name == name and name in bundled_names():
        return bundled(name)
    return p
