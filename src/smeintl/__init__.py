"""smeintl: internationalization and business-independence indices of small firms.

The deterministic ideal-profile method of the Hitachi-area SME study
(:mod:`smeintl.indices`, :mod:`smeintl.profiles`), and Bayesian measurement models
of the same items (:mod:`smeintl.measurement`) with a posterior predictive
comparison of the two (:mod:`smeintl.predictive`).  :func:`analyze` runs the whole
analysis (what ``smeintl run`` does) and returns an :class:`Analysis`.

The names below are importable from ``smeintl`` directly; all but the spec's and
:class:`UserError` are imported on first use (PEP 562), so ``import smeintl`` stays
fast and does not import PyMC.
"""

from importlib import import_module as _import_module
from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from .errors import UserError
from .spec import Spec, SpecError, load_spec, parse_spec

try:
    __version__ = _version("smeintl")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

#: public name -> submodule that defines it, imported on first access
_LAZY = {
    "load_survey": "data",
    "Survey": "data",
    "run_deterministic": "profiles",
    "MeasurementModel": "measurement",
    "summarize_fit": "measurement",
    "parameter_table": "measurement",
    "compare_models": "measurement",
    "fit_checks": "measurement",
    "item_invariance": "measurement",
    "spec_from_model": "syntax",
    "load_fit": "measurement",
    "save_fit": "measurement",
    "compare": "predictive",
    "run_robustness": "robustness",
    "analyze": "api",
    "Analysis": "api",
    "write_report": "report",
    "simulate_survey": "simulate",
}

__all__ = [
    "load_spec",
    "parse_spec",
    "Spec",
    "SpecError",
    "UserError",
    "load_survey",
    "Survey",
    "MeasurementModel",
    "run_deterministic",
    "summarize_fit",
    "parameter_table",
    "compare_models",
    "fit_checks",
    "item_invariance",
    "spec_from_model",
    "load_fit",
    "save_fit",
    "compare",
    "run_robustness",
    "analyze",
    "Analysis",
    "write_report",
    "simulate_survey",
    "__version__",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
