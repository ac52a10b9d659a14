"""Item families: one module per family behind one protocol (:mod:`.base`).

The registry holds, in this order (the order of the model's likelihood blocks):
:class:`~.ordinal.Ordinal` (``likert``, ``stage``), :class:`~.percent.Percent`,
:class:`~.count.Count`, :class:`~.binary.Binary`, :class:`~.continuous.Continuous`.
A new family subclasses :class:`Family` and is added with :func:`register`; the spec,
data validation, scaling, model, simulation, predictive checks and report then serve
its items without another change.
"""

from .base import Block, BuildContext, Family, ParameterRow, families, family_of, register, scales, unregister
from .binary import Binary
from .continuous import Continuous, standardization
from .count import Count
from .ordinal import Ordinal
from .percent import Percent

for _f in (Ordinal(), Percent(), Count(), Binary(), Continuous()):
    register(_f)

__all__ = ["Family", "Block", "BuildContext", "ParameterRow", "register", "unregister", "families", "family_of", "scales",
           "Ordinal", "Percent", "Count", "Binary", "Continuous", "standardization"]
