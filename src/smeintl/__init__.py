"""smeintl: internationalization and business-independence indices of small firms.

The deterministic ideal-profile method of the Hitachi-area SME study
(:mod:`smeintl.indices`, :mod:`smeintl.profiles`), and Bayesian measurement models
of the same items (:mod:`smeintl.measurement`) with a posterior predictive
comparison of the two (:mod:`smeintl.predictive`).
"""

from importlib.metadata import PackageNotFoundError, version

from .spec import Spec, SpecError, load_spec, parse_spec

try:
    __version__ = version("smeintl")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["Spec", "SpecError", "load_spec", "parse_spec", "__version__"]
