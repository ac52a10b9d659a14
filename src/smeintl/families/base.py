"""The item-family protocol and the registry every other module loops over.

An item *family* is one likelihood of the measurement model together with everything
the rest of the toolkit needs to know about items of that kind.  Each family is one
object (one module of this package) and owns:

- the spec side: which scale names it serves (``likert`` and ``stage`` are both
  ordinal), the item range it reads from a spec table (:meth:`Family.item_range`);
- the data side: which raw answers are allowed, in words (:meth:`Family.allowed`) and
  as a vectorized test (:meth:`Family.valid`);
- the deterministic method's scaling to [0, 1] (:meth:`Family.scaling`);
- the model: parameter names, coordinates, default priors, the PyMC likelihood
  (:meth:`Family.build`);
- the generative side in numpy: random answers (:meth:`Family.draw`), the expected
  scaled answer (:meth:`Family.expected`) and the log-likelihood of observed answers at
  given latent scores (:meth:`Family.loglik`, for LOO with the scores integrated out);
- the latent-response residual variance (:meth:`Family.residual_variance`, for
  standardized loadings and omega);
- its rows of the parameter table (:meth:`Family.parameter_rows`: each parameter's name,
  meaning and units, e.g. continuous items in their data units);
- its wording in reports (:attr:`Family.model_text`, :attr:`Family.scaling_text`).

Items of one family are modelled in *blocks* (:class:`Block`): one block per family by
default, one per number of categories for the ordinal family.  A new family is a
subclass of :class:`Family` passed to :func:`register`; nothing outside this package
branches on a scale name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["Family", "Block", "BuildContext", "ParameterRow", "item_rows", "register", "unregister", "families",
           "family_of", "scales", "sigmoid", "logit"]


def logit(p):
    return np.log(p) - np.log1p(-p)


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def answered(X: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The answered cells of the items ``idx`` of ``X`` (firms x items, NaN unanswered):
    firm, position in ``idx``, raw answer."""
    sub = X[:, idx]
    f, j = np.nonzero(~np.isnan(sub))
    return f, j, sub[f, j]


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)


@dataclass(frozen=True, eq=False)
class Block:
    """Items of one family modelled together: ``idx`` their positions in spec order."""

    family: "Family"
    key: str  # unique within a model: "ordinal5", "percent", ...
    idx: np.ndarray
    n_categories: int | None = None  # ordinal blocks

    @property
    def size(self) -> int:
        return int(self.idx.size)


@dataclass(frozen=True, eq=False)
class ParameterRow:
    """One row of a fit's parameter table (``smeintl.measurement.summary.parameter_table``)
    with its posterior draws.

    ``block``: the kind of parameter (``loading``, ``intercept``, ``threshold``,
    ``residual_sd``, ``dispersion``, ``precision``, ...); ``lhs``, ``op``, ``rhs``: the
    parameter in lavaan's notation (``construct =~ item``, ``item ~1``, ``item | t1``,
    ``item ~~ item``); ``scale``: the units of the values (``data``: the item's own units;
    ``logit`` / ``log``: the family's link scale; ``standardized``: the latent-response
    standardized solution; ``natural``: the parameter as the likelihood defines it, no
    link; ``latent``: the latent scale, sd 1 within group); ``variable``: the posterior
    variable the row is computed from (None for a derived quantity such as omega); ``draws``: one value per posterior draw, (S,).
    """

    block: str
    lhs: str
    op: str
    rhs: str
    scale: str
    variable: str | None
    draws: np.ndarray
    label: str = ""
    item: str | None = None
    construct: str | None = None
    group: str | None = None


def item_rows(layout, block: "Block", values: np.ndarray, *, kind: str, op: str, scale: str, variable: str,
              label: str, rhs: str | None = None, loading: bool = False) -> list[ParameterRow]:
    """One :class:`ParameterRow` per item of ``block`` from ``values`` (S, n): ``item op rhs``
    (``rhs`` default the item itself), or ``construct op item`` where ``loading``."""
    out = []
    values = np.asarray(values, dtype=float)
    for j, k in enumerate(block.idx):
        item, construct = layout.names[k], layout.constructs[layout.construct[k]]
        lhs, right = (construct, item) if loading else (item, item if rhs is None else rhs)
        out.append(ParameterRow(kind, lhs, op, right, scale, variable, values[:, j], label, item, construct))
    return out


@dataclass
class BuildContext:
    """What a family's :meth:`Family.build` needs from the model being built.

    ``pm``/``pt``: PyMC and ``pytensor.tensor``; ``inputs``: the model's packed inputs
    (``measurement.model._Inputs``: ``add`` data, ``prior`` settings); ``priors``: the
    spec's merged priors; ``X``: raw answers (F, I); ``eta_flat``: the latent scores
    flattened (firm-major); ``signed``: loading * sign per item; ``shift``: per-item
    shift of intercepts and cutpoints on standardized scores, or None;
    ``standardization``: centre and scale of the continuous items; ``n_constructs``.

    Group-specific item parameters (``MeasurementModel(invariance=...)``): ``groups`` the
    firms' group codes (F,), else None; ``n_groups``; ``group_signed``: ``signed`` holds
    one signed loading per group and item (group-major, ``G * I``); ``location_dev``: the
    deviation (G, I) that each group adds to each item's linear predictor, or None.
    """

    pm: Any
    pt: Any
    inputs: Any
    priors: Mapping[str, Mapping[str, Any]]
    layout: Any
    X: np.ndarray
    eta_flat: Any
    signed: Any
    shift: Any
    standardization: Mapping[str, np.ndarray] | None
    n_constructs: int
    groups: np.ndarray | None = None
    n_groups: int = 0
    group_signed: bool = False
    location_dev: Any = None

    def cells(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Observed cells of the items ``idx``: firm, position in ``idx``, answer."""
        return answered(self.X, idx)

    def shifted(self, idx: np.ndarray):
        return None if self.shift is None else self.shift[idx]

    def linear_predictor(self, f: np.ndarray, items: np.ndarray):
        """``eta[f, construct(item)] * signed[item]`` of the cells ``(f, items)`` as a graph."""
        lay = self.layout
        return self.eta_flat[f * self.n_constructs + lay.construct[items]] * self.signed[items]


class Family:
    """One item family; subclasses override what differs (see the module docstring).

    Class attributes: ``name`` (the family), ``scales`` (scale names it serves in a
    spec), ``whole_numbers`` (answers must be whole numbers), ``linear`` (identity link
    with a residual sd: omega uses it), ``ordinal`` (ordered categories), ``loading_prior`` (key of the default loading
    prior in the spec's ``[priors]``), ``params`` (posterior parameter names, for one
    block; ordinal blocks name theirs by number of categories), ``prefix`` (of its
    item dimension ``<prefix>_item``), ``model_text``, ``scaling_text``, ``link`` (the scale
    of the linear predictor, as the parameter table names it).
    """

    name: str = ""
    scales: tuple[str, ...] = ()
    whole_numbers: bool = False
    linear: bool = False
    ordinal: bool = False
    loading_prior: str = "loading"
    params: tuple[str, ...] = ()
    prefix: str = ""
    model_text: str = ""
    scaling_text: str = "(x - min) / (max - min)"
    link: str = "logit"

    # ------------------------------------------------------------------ spec
    def item_range(self, it: Mapping[str, Any], scale: str, key: str, problems: list[str]) -> tuple[float, float]:
        """(min, max) of an item table ``it``; problems appended with ``key``."""
        return self.checked_range(it.get("min"), it.get("max"), scale, key, problems)

    @staticmethod
    def checked_range(lo, hi, scale: str, key: str, problems: list[str]) -> tuple[float, float]:
        """``(lo, hi)`` as numbers with ``lo < hi``, else a problem and a stand-in range."""
        if not _num(lo) or not _num(hi):
            problems.append(f"{key}: scale {scale!r} needs numeric 'min' and 'max', got min={lo!r} max={hi!r}")
            return 0.0, 1.0
        if hi <= lo:
            problems.append(f"{key}: 'max' ({hi}) must be greater than 'min' ({lo})")
            return float(lo), float(lo) + 1.0
        return float(lo), float(hi)

    def n_categories(self, item) -> int:
        raise AttributeError(f"item {item.name!r} of scale {item.scale!r} has no categories")

    def categories(self, item) -> np.ndarray | None:
        """The answer categories of a categorical item (ordinal, binary), else None."""
        return None

    def range_keys(self, item) -> dict[str, float]:
        """The keys of an item table that declare its range (writing a spec back)."""
        return {"min": item.min, "max": item.max}

    def range_text(self, item) -> str:
        """The item's declared range in words (report tables)."""
        return f"{item.min:g}-{item.max:g}"

    # ------------------------------------------------------------------ data
    def allowed(self, item, lo: str, hi: str) -> str:
        """Allowed raw answers in words (``lo``/``hi`` formatted)."""
        return f"numbers {lo} to {hi} ({item.scale})"

    def valid(self, v: np.ndarray, item) -> np.ndarray:
        """Which finite answers ``v`` are allowed (whole numbers are checked separately)."""
        return (v >= item.min) & (v <= item.max)

    # ------------------------------------------------------------------ deterministic scaling
    def scaling(self, item) -> tuple[float, float, float, bool]:
        """``(lo, span, cap, clip)``: the scaled answer is ``(min(x, cap) - lo) / span``,
        clipped to [0, 1] where ``clip``."""
        return item.min, item.max - item.min, np.inf, False

    # ------------------------------------------------------------------ model
    def blocks(self, layout, idx: np.ndarray) -> list[Block]:
        """The blocks of this family's items ``idx`` (spec order)."""
        return [Block(self, self.name, idx)] if idx.size else []

    def coords(self, layout, block: Block) -> dict[str, list]:
        return {f"{self.prefix}_item": [layout.names[k] for k in block.idx]}

    def item_dim(self, block: Block) -> str:
        return f"{self.prefix}_item"

    def param_names(self, block: Block) -> tuple[str, ...]:
        return self.params

    def param_dims(self, name: str, block: Block) -> tuple[str, ...]:
        """Dimensions of one parameter (simulation studies' tables)."""
        return (self.item_dim(block),)

    # ------------------------------------------------------------------ the likelihood
    #: the fused kernel computing this family's log-likelihood (:mod:`.kernels`), or None
    #: for a family whose :meth:`build` adds its own observed variable
    kernel: str | None = None

    def encode(self, y: np.ndarray, j: np.ndarray, block: Block, layout, std) -> np.ndarray:
        """Raw answers of the cells (``j``: position of the item in the block) as the
        likelihood reads them (the observed values of the block's variable)."""
        return y

    def decode(self, v: np.ndarray, j: np.ndarray, block: Block, layout, std) -> np.ndarray:
        """The inverse of :meth:`encode`: raw answers."""
        return v

    def observed_cells(self, layout, block: Block, X: np.ndarray, std) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The observed answers of the block: firm, position in the block, encoded value."""
        f, j, y = answered(X, block.idx)
        return f, j, self.encode(y, j, block, layout, std)

    def log_jacobian(self, j: np.ndarray, block: Block, layout, std) -> np.ndarray | None:
        """Per cell, log |d encoded / d raw| (densities of the raw answers), or None."""
        return None

    def positions(self, j, v, block: Block):
        """The kernel's per-cell position argument from the item positions ``j`` and the
        encoded values ``v`` (numpy arrays or PyTensor tensors); unused by default."""
        return j * 0

    def build_params(self, ctx: BuildContext, block: Block):
        """The block's parameters in the model (priors added to it) as the kernel's three
        parameter vectors ``(p1, p2, p3)``."""
        raise NotImplementedError

    def kernel_widths(self, block: Block) -> tuple[int, int, int]:
        """How many values per item each of the kernel's ``(p1, p2, p3)`` holds (its values
        for item position j at ``j * width ...``), 0 for a parameter the kernel does not
        index by item: what :meth:`group_params` repeats per group."""
        raise NotImplementedError(f"item family {self.name!r} does not support group-specific item parameters "
                                  "(Family.kernel_widths)")

    def group_params(self, ctx: BuildContext, block: Block, p1, p2, p3):
        """The kernel's parameter vectors for cells whose item position is ``g * n + j``
        (group g, n items in the block): each vector indexed by item repeated for every
        group (:meth:`kernel_widths`), and ``p1``, the offset of the linear predictor,
        plus the group's location deviation of each item (``ctx.location_dev``): the
        intercept moves with it, the ordinal cutpoints against it."""
        pt, G = ctx.pt, int(ctx.n_groups)
        out = [pt.tile(pt.as_tensor(p), G) if w else p for p, w in zip((p1, p2, p3), self.kernel_widths(block))]
        out[0] = out[0] + ctx.location_dev[:, block.idx].reshape((-1,))
        return tuple(out)

    def kernel_params(self, P: Mapping[str, np.ndarray], s, block: Block) -> tuple[np.ndarray, ...]:
        """The kernel's ``(p1, p2, p3)`` at posterior draw ``s`` (an index)."""
        raise NotImplementedError

    def matrix_params(self, P: Mapping[str, np.ndarray], block: Block) -> dict[str, np.ndarray]:
        """The block's parameters broadcasting against a (..., F, n) linear predictor."""
        raise NotImplementedError

    def cell_params(self, p1, p2, p3, j: np.ndarray, block: Block) -> dict[str, np.ndarray]:
        """The same parameters per cell, from the kernel's vectors."""
        raise NotImplementedError

    def draw_cells(self, lp: np.ndarray, prm: Mapping[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
        """Random encoded answers at ``lp`` = loading * sign * eta with parameters ``prm``
        (:meth:`matrix_params` or :meth:`cell_params`): the family's one random draw."""
        raise NotImplementedError

    def build(self, ctx: BuildContext, block: Block) -> None:
        """Add the block's parameters and its likelihood to the PyMC model in context: one
        observed variable ``y_<block key>`` over the block's observed cells, a
        ``pm.CustomDist`` whose log-density is the family's kernel (each cell's value) and
        whose random draw is :meth:`draw_cells`, so PyMC's posterior and prior predictive
        and log-likelihood apply.  The cells' indices and values are model inputs."""
        from .kernels import cells_logp_elementwise

        pm, inp, lay = ctx.pm, ctx.inputs, ctx.layout
        p1, p2, p3 = self.build_params(ctx, block)
        f, j, v = self.observed_cells(lay, block, ctx.X, ctx.standardization)
        items = block.idx[j]
        name = block.key
        eta_pos = f * ctx.n_constructs + lay.construct[items]
        if ctx.groups is not None:  # group-specific loadings and locations: (group, item) positions
            g = np.asarray(ctx.groups, dtype=np.int64)[f]
            if ctx.group_signed:
                items = items + g * len(lay.names)
            if ctx.location_dev is not None:
                j = j + g * block.size
                p1, p2, p3 = self.group_params(ctx, block, p1, p2, p3)
        cells = [inp.add(f"data_{name}_{k}", x, dtype=np.int64)
                 for k, x in (("eta", eta_pos), ("item", items), ("j", j))]
        value = inp.add(f"data_{name}_y", v, dtype=np.float64)
        family, kernel = self, self.kernel

        def core(x):  # a parameter with core dims only, which PyMC may pass with batch dims of length 1
            return x[(0,) * (x.ndim - 1)]

        def logp(value, eta, signed, p1, p2, p3, e, it, j):
            eta, signed, p1, p2, p3 = (core(x) for x in (eta, signed, p1, p2, p3))
            pos = family.positions(j, value, block)
            return cells_logp_elementwise(kernel, eta, signed, p1, p2, p3, e, it, j, pos, value)

        def random(eta, signed, p1, p2, p3, e, it, j, rng=None, size=None):
            eta, signed, p1, p2, p3 = (core(np.asarray(x)) for x in (eta, signed, p1, p2, p3))
            lp = eta[e] * signed[it]
            return family.draw_cells(lp, family.cell_params(p1, p2, p3, j, block), rng)

        pm.CustomDist(f"y_{name}", ctx.eta_flat, ctx.signed, p1, p2, p3, *cells, logp=logp, random=random,
                      signature="(a),(b),(c),(d),(e),(),(),()->()", observed=value)

    # ------------------------------------------------------------------ numpy generative side
    def draw(self, P: Mapping[str, np.ndarray], lin: np.ndarray, block: Block, layout,
             rng: np.random.Generator, std) -> np.ndarray:
        """Raw answers given ``lin`` = loading * sign * eta, shape (..., F, n)."""
        v = self.draw_cells(lin, self.matrix_params(P, block), rng)
        return self.decode(v, np.arange(block.size), block, layout, std)

    def expected(self, P, lin, block: Block, layout, std, caps=None) -> np.ndarray:
        """Expected scaled answer (before reverse coding), shape (..., F, n)."""
        raise NotImplementedError

    def loglik(self, P, s, lin, y, block: Block, layout, std) -> np.ndarray:
        """Log-likelihood of the answers ``y`` (F, n; NaN missing: contributes 0) at
        ``lin`` (F, Q, n), with the parameters of draw(s) ``s``: (F, Q, n).  Only for a
        family without a kernel (with one, :func:`smeintl.measurement.cell_loglik` runs
        the kernel)."""
        raise NotImplementedError

    def residual_variance(self, P, block: Block) -> np.ndarray:
        """Latent-response residual variance per draw and item, (S, n): pi^2 / 3 for
        logit links."""
        S = np.asarray(P["loading"]).shape[0]
        return np.full((S, block.size), np.pi**2 / 3)

    # ------------------------------------------------------------------ parameter table
    def parameter_rows(self, P: Mapping[str, np.ndarray], block: Block, layout, std) -> list[ParameterRow]:
        """The block's rows of the parameter table, values per posterior draw: each item's
        loading (the coefficient of the latent score, sign of reverse-coded items included,
        latent sd 1 within group) in the units of :meth:`item_units` and standardized
        (latent-response: loading / sqrt(loading^2 + :meth:`residual_variance`)), then the
        rows of each of :meth:`param_names` (:meth:`param_rows`).  ``P``:
        ``smeintl.measurement.posterior_params``; ``std``: the fit's standardization of
        the continuous items (``smeintl.measurement.fit_standardization``), or None."""
        lam = np.asarray(P["loading"], dtype=float)[:, block.idx] * layout.sign[block.idx]
        scale, mult = self.item_units(block, std)
        standardized = lam / np.sqrt(lam**2 + self.residual_variance(P, block))
        rows = item_rows(layout, block, lam * mult, kind="loading", op="=~", scale=scale, variable="loading",
                         label=f"loading ({scale})", loading=True)
        rows += item_rows(layout, block, standardized, kind="loading", op="=~", scale="standardized",
                          variable="loading", label="standardized loading (latent response)", loading=True)
        for name in self.param_names(block):
            rows += self.param_rows(name, P, block, layout, std)
        return rows

    def item_units(self, block: Block, std) -> tuple[str, np.ndarray]:
        """The units of the block's loadings and intercepts in the parameter table and the
        factor per item taking them there from the linear predictor: the link scale, 1."""
        return self.link, np.ones(block.size)

    def param_rows(self, name: str, P: Mapping[str, np.ndarray], block: Block, layout, std) -> list[ParameterRow]:
        """The parameter table's rows of the block's parameter ``name``: by default the first
        of :meth:`param_names` is the items' intercept on the link scale (``item ~1``, as
        :meth:`shift_location` takes it), any other parameter one row per value
        (``item := name``, ``item := name[k]`` with more dimensions)."""
        a = np.asarray(P[name], dtype=float)
        if name == self.param_names(block)[0] and a.ndim == 2:
            return item_rows(layout, block, a, kind="intercept", op="~1", rhs="", scale=self.link, variable=name,
                             label=f"intercept ({self.link})")
        flat = a.reshape(a.shape[0], block.size, -1)
        rows = []
        for k in range(flat.shape[2]):
            rhs = name if flat.shape[2] == 1 else f"{name}[{k}]"
            rows += item_rows(layout, block, flat[:, :, k], kind=name, op=":=", rhs=rhs, scale="natural",
                              variable=name, label=name)
        return rows

    # ------------------------------------------------------------------ checks and pictures
    #: colour of the family's items in posterior predictive pictures
    color: str = "#1f78b4"

    def ppc_bins(self, item) -> list[tuple[float, float, str]]:
        """Value bins ``(lo, hi, label)`` of :meth:`ppc_statistics`: five equal-width bins
        of the declared range, open at both ends."""
        edges = np.linspace(item.min, item.max, 6)
        out = [(-np.inf, edges[1], f"<{edges[1]:.3g}")]
        for a, b in zip(edges[1:-2], edges[2:-1]):
            out.append((a, b, f"{a:.3g}-{b:.3g}"))
        out.append((edges[-2], np.inf, f">{edges[-2]:.3g}"))
        return out

    def ppc_statistics(self, v: np.ndarray, item) -> np.ndarray:
        """Statistics of answers ``v`` (..., n) of one item that a posterior predictive
        check compares, (..., k): by default the shares of :meth:`ppc_bins`."""
        with np.errstate(all="ignore"):
            return np.stack([((v >= lo) & (v <= hi)).mean(axis=-1) for lo, hi, _ in self.ppc_bins(item)], axis=-1)

    def ppc_labels(self, item) -> list[str]:
        """Labels of :meth:`ppc_statistics`."""
        return [b[2] for b in self.ppc_bins(item)]

    # ------------------------------------------------------------------ model checks
    def check_statistics(self, v: np.ndarray, item) -> np.ndarray:
        """Statistics of answers ``v`` (..., n; no missing values) of one item that the
        item-level model checks (:func:`smeintl.measurement.fit_checks.fit_checks`) compare
        between the observed and the replicated surveys, (..., k): by default the mean and
        the standard deviation (ddof 1) of the answers."""
        v = np.asarray(v, dtype=float)
        with np.errstate(all="ignore"):
            sd = v.std(axis=-1, ddof=1) if v.shape[-1] > 1 else np.full(v.shape[:-1], np.nan)
            return np.stack([v.mean(axis=-1), sd], axis=-1)

    def check_statistic_names(self, item) -> list[str]:
        """Names of :meth:`check_statistics`, in order."""
        return ["mean", "sd"]

    def check_cells(self, v: np.ndarray, item, observed: np.ndarray) -> tuple[np.ndarray, int]:
        """The cells of the bivariate tables of the pairwise model check: each answer of
        ``v`` (any shape; NaN: -1) as a cell number 0 to k-1, and k.  ``observed``: the
        item's observed answers (for cells that depend on the data).  By default the bins
        of :meth:`ppc_bins`."""
        v = np.asarray(v, dtype=float)
        bins = self.ppc_bins(item)
        out = np.full(v.shape, -1, dtype=np.int64)
        with np.errstate(invalid="ignore"):
            for k, (lo, hi, _) in enumerate(bins):
                out[(out < 0) & (v >= lo) & (v <= hi)] = k
            # a value between two closed bins (a non-integer between count bins) goes to the bin below it
            for k, (lo, _, _) in reversed(list(enumerate(bins))):
                out[(out < 0) & np.isfinite(v) & (v >= lo)] = k
            out[(out < 0) & np.isfinite(v)] = 0
        return out, len(bins)

    def shift_location(self, P: Mapping[str, np.ndarray], d: np.ndarray, block: Block) -> dict[str, np.ndarray]:
        """The block's parameters when the linear predictor gains ``d`` (per item of the
        block) and the latent scale stays: the intercept (``params[0]``) gains ``d``."""
        key = self.param_names(block)[0]
        return {key: np.asarray(P[key], dtype=float) + d}

    def to_fit_scale(self, P: Mapping[str, np.ndarray], block: Block, simulated: Mapping[str, np.ndarray],
                     fitted: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The block's true parameters (and ``loading``) on the scale a fit of the simulated
        survey estimates them, when the family standardizes its answers by the sample
        (``simulated``: the standardization of the simulation, ``fitted``: the fit's).
        Families that do not standardize change nothing."""
        return {}

    def finish_simulated(self, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Simulated answers (columns of the block's items, raw scale, ranges ``lo``-``hi``) as
        a survey file would hold them."""
        return x

    def typical_loading(self, loading: float) -> float:
        """The simulation's true loading of an item of this family, given the default."""
        return loading

    def typical(self, layout, block: Block, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Plausible true parameters of the block for recovery studies."""
        raise NotImplementedError


_REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family (an instance) to the registry; its scale names must be new."""
    taken = {s for f in _REGISTRY.values() for s in f.scales}
    clash = set(family.scales) & taken
    if family.name in _REGISTRY or clash:
        raise ValueError(f"family {family.name!r} or scales {sorted(clash)} already registered")
    _REGISTRY[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family from the registry (tests registering their own)."""
    _REGISTRY.pop(name, None)


def families() -> tuple[Family, ...]:
    """Registered families, in registration order (the order of the model's blocks)."""
    return tuple(_REGISTRY.values())


def scales() -> tuple[str, ...]:
    """Every scale name a spec may use."""
    return tuple(s for f in _REGISTRY.values() for s in f.scales)


def family_of(scale: str) -> Family:
    """The family serving a scale name."""
    for f in _REGISTRY.values():
        if scale in f.scales:
            return f
    raise KeyError(f"unknown scale type {scale!r}; allowed: {', '.join(scales())}")


def items_of(layout_scales: Sequence[str], family: Family) -> np.ndarray:
    return np.array([k for k, s in enumerate(layout_scales) if s in family.scales], dtype=int)
