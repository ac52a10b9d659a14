"""The lavaan-style model syntax: parsing, scale inference, overrides, the spec it builds,
and the command line (``--model``, ``smeintl spec``)."""

from __future__ import annotations

import io
import json

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from smeintl.cli import main
from smeintl.errors import UserError
from smeintl.spec import load_spec, parse_spec
from smeintl.syntax import (
    ModelSyntaxError,
    ScaleError,
    ScaleOverride,
    format_scales,
    infer_scales,
    load_model_text,
    parse_model,
    parse_scale_overrides,
    spec_from_model,
)

TWO_FACTORS = "f1 =~ a + b + c\nf2 =~ d + e + f"


# ---------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------
def test_parse_basic_model_keeps_order():
    model = parse_model("visual =~ x1 + x2 + x3\ntextual =~ x4 + x5 + x6\nspeed =~ x7 + x8 + x9")
    assert model == {"visual": ("x1", "x2", "x3"), "textual": ("x4", "x5", "x6"), "speed": ("x7", "x8", "x9")}
    assert list(model) == ["visual", "textual", "speed"]


def test_parse_comments_blank_lines_continuations_and_semicolons():
    text = """
    # the Holzinger-Swineford model
    visual  =~ x1 + x2 +   # continued after a trailing '+'
               x3
    textual =~ x4 + x5; speed =~ x7   ! lavaan's other comment sign
             + x8                      # a line starting with '+' continues
    textual =~ x6                      # appends to textual
    speed =~
        x9
    """
    assert parse_model(text) == {"visual": ("x1", "x2", "x3"), "textual": ("x4", "x5", "x6"),
                                 "speed": ("x7", "x8", "x9")}


def test_parse_names_with_dots_and_underscores_and_no_spaces():
    assert parse_model("f_1=~x.1+_x2+X3") == {"f_1": ("x.1", "_x2", "X3")}


def test_free_loadings_and_unit_variance_are_accepted():
    # lavaan's way to identify a model by its latent variance: what smeintl does anyway
    text = "f1 =~ NA*a + b + c\nf1 ~~ 1*f1\nf2 =~ d + e"
    assert parse_model(text) == {"f1": ("a", "b", "c"), "f2": ("d", "e")}


@pytest.mark.parametrize("text, line, words", [
    ("f1 =~ a + b\nf1 ~ x", 2, ["`f1 ~ x`", "regressions ('~') are not part of the measurement model",
                                "correlations itself"]),
    ("f1 =~ a + b\nf2 =~ c + d\nf1 ~~ f2", 3, ["('~~')", "estimates all latent correlations itself",
                                               "residual covariances"]),
    ("f1 =~ a + b\na ~~ b", 2, ["residual covariances of items are not part"]),
    ("f1 =~ a + b\nf3 ~~ 1*f3", 2, ["('~~')"]),  # a unit variance of no construct
    ("f1 =~ a + b\na ~ 1", 2, ["intercepts ('~ 1')"]),
    ("f1 =~ a + b\na ~*~ a", 2, ["scaling factors"]),
    ("f1 <~ a + b", 1, ["formative"]),
    ("f1 =~ a + b\nd := 2*c", 2, ["defined parameters (':=')"]),
    ("f1 =~ a + b\nc == d", 2, ["constraints ('==')"]),
    ("f1 =~ a + b\nc > 0", 2, ["constraints ('>')"]),
    ("f1 =~ a + b\na | t1 + t2", 2, ["thresholds ('|')", "likert"]),
    ("f1 =~ 1*a + b", 1, ["'1*a' fixes the loading of a at 1", "write 'a' without '1*'"]),
    ("f1 =~ 0.5*a + b", 1, ["fixes the loading of a at 0.5"]),
    ("f1 =~ lam*a + b", 1, ["labels the loading of a", "equality constraints are not supported"]),
    ("f1 =~ label(\"l1\")*a + b", 1, ["labels the loading of a"]),
    ("f1 =~ equal(\"l1\")*a + b", 1, ["constrains the loading of a"]),
    ("f1 =~ start(0.8)*a + b", 1, ["modifier start() is not supported"]),
    ("f1 =~ c(1, NA)*a + b", 1, ["group-specific modifiers"]),
    ("f1 =~ a + b\nf2 =~ b + c", 2, ["item 'b' is also under construct 'f1' (line 1)",
                                     "cross-loadings are not supported by the model"]),
    ("f1 =~ a + b + a", 1, ["item 'a' is listed twice for construct 'f1'"]),
    ("f1 =~ a + b\nf2 =~ f1 + c", 2, ["'f1' is a construct (line 1)", "higher-order constructs"]),
    ("=~ a + b", 1, ["empty left-hand side"]),
    ("f1 =~ a + + b", 1, ["empty term"]),
    ("f1 =~ a + b\nf2 =~ c +\nf3 =~ d", 2, ["ends with '+'", "line 3 starts a new statement"]),
    ("f1 =~ a + b\nf2 =~\nf3 =~ d", 2, ["ends with '=~'", "an item is missing"]),
    ("f1 =~ a + b +", 1, ["the model ends after '+'"]),
    ("f1 =~ a + b\nf2 =~", 2, ["the model ends after '=~'"]),
    ("f1 =~ a + b\nc + d", 2, ["`c + d` has no operator", "end it with '+'"]),
    ("2f =~ a + b", 1, ["invalid construct name '2f'"]),
    ("f-1 =~ a + b", 1, ["invalid construct name 'f-1'"]),
    ("f 1 =~ a + b", 1, ["construct name 'f 1' holds a space"]),
    ("f1 =~ a + b c", 1, ["item name 'b c' holds a space"]),
    ("f1 =~ a + x$2", 1, ["invalid item name 'x$2'"]),
    ("f1 =~ a + -b", 1, ["'-b': lavaan has no '-' before an item", "reverse = true"]),
    ("f1 =~ a - b", 1, ["lavaan has no '-' before an item"]),
    ("f1 =~ a =~ b", 1, ["one operator per statement"]),
])
def test_parse_refuses_with_line_and_text(text, line, words):
    with pytest.raises(ModelSyntaxError) as info:
        parse_model(text)
    msg = str(info.value)
    assert f"line {line}" in msg
    for w in words:
        assert w in msg, (w, msg)
    assert isinstance(info.value, UserError)


@pytest.mark.parametrize("text", ["", "   \n\n", "# nothing but a comment\n"])
def test_parse_refuses_an_empty_model(text):
    with pytest.raises(ModelSyntaxError, match="declares no construct"):
        parse_model(text)


def test_parse_lists_every_problem_in_line_order_and_names_the_source():
    text = "f1 =~ a + b\nf2 =~ 1*c + d\nf1 ~~ f2\nf3 =~ a"
    with pytest.raises(ModelSyntaxError) as info:
        parse_model(text, source="model.lav")
    err = info.value
    assert len(err.problems) == 3
    assert [p.split(":")[0] for p in err.problems] == ["line 2", "line 3", "line 4"]
    assert str(err).startswith("invalid model syntax (model.lav): 3 problems")


def test_continued_statement_names_its_lines():
    with pytest.raises(ModelSyntaxError, match=r"lines 1-2: `f1 =~ a \+ 1\*b`"):
        parse_model("f1 =~ a +\n 1*b")


# ---------------------------------------------------------------------------
# the model text: a file or the syntax itself
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["model.lav", "model.txt", "model"])
def test_model_text_from_a_file(tmp_path, name):
    p = tmp_path / name
    p.write_text(TWO_FACTORS + "\n", encoding="utf-8")
    assert load_model_text(str(p)) == TWO_FACTORS + "\n"
    assert load_model_text(p) == TWO_FACTORS + "\n"


def test_model_text_inline_and_shell_newlines():
    assert load_model_text(TWO_FACTORS) == TWO_FACTORS
    # typed in a shell's quotes, \n arrives as two characters
    assert parse_model(load_model_text(r"f1 =~ a+b+c\nf2 =~ d+e+f")) == {"f1": ("a", "b", "c"),
                                                                        "f2": ("d", "e", "f")}


def test_model_text_missing_file_and_folder(tmp_path):
    with pytest.raises(UserError, match="model file .*nope.lav not found"):
        load_model_text(str(tmp_path / "nope.lav"))
    with pytest.raises(UserError, match="not found"):
        load_model_text("models/hs")
    with pytest.raises(UserError, match="is a folder"):
        load_model_text(str(tmp_path))
    binary = tmp_path / "model.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(UserError, match="not a text file"):
        load_model_text(str(binary))


# ---------------------------------------------------------------------------
# scale inference
# ---------------------------------------------------------------------------
def _one(values, **kw):
    """The inferred row of one column of ``values``, its fields as attributes."""
    frame = pd.DataFrame({"x": pd.Series(values, dtype=object)})
    return SimpleNamespace(**infer_scales(frame, ["x"], **kw).iloc[0].to_dict())


def _scale(values):
    row = _one(values)
    return row.scale, row.min, row.max


def _two_point(a, b, n_a, n_b):
    """n_a answers a and n_b answers b: skewness (1 - 2p) / sqrt(p (1 - p)) with p = n_b / n."""
    return [a] * n_a + [b] * n_b


def test_rule_binary():
    row = _one([0, 1, 1, 0, None, 1])
    assert (row.scale, row.min, row.max, row.n_levels, row.n_answers) == ("binary", 0, 1, 2, 5)
    assert row.reason == "only 0 and 1"
    assert np.isnan(row.cap)
    # one level only: binary still (0 or 1), said so
    row = _one([1, 1, 1])
    assert row.scale == "binary" and "only 1 answered" in row.reason


def test_rule_likert_and_its_boundaries():
    row = _one([1, 2, 3, 4, 5, 3])
    assert (row.scale, row.min, row.max, row.n_levels) == ("likert", 1, 5, 5)
    assert row.reason == "whole numbers 1 to 5"
    # an inner level nobody chose
    row = _one([1, 2, 3, 5, 6, 7])
    assert (row.scale, row.min, row.max) == ("likert", 1, 7)
    assert row.reason == "whole numbers 1 to 7; 4 never answered"
    assert _one([1, 3, 5, 7]).reason == "whole numbers 1 to 7; 2, 4 and 6 never answered"
    # 0 to 10 (11 points, max - min = 10) is a rating scale ...
    row = _one(list(range(11)))
    assert (row.scale, row.min, row.max, row.n_levels) == ("likert", 0, 10, 11)
    # ... 1 to 12 (max - min = 11) is not
    assert _one(list(range(1, 13))).scale == "continuous"
    # negative codes; two levels other than 0 and 1
    assert _scale([-3, -1, 0, 2, 3]) == ("likert", -3, 3)
    assert _scale([1, 2, 2, 1]) == ("likert", 1, 2)


def test_rule_percent():
    rng = np.random.default_rng(1)
    pct = np.where(rng.random(200) < 0.3, 0.0, rng.uniform(0, 100, 200)).round(1)
    row = _one(list(pct))
    assert (row.scale, row.min, row.max) == ("percent", 0, 100)
    assert "exact 0s" in row.reason
    # coarse percentages are percentages (max - min > 10, not count-like)
    row = _one([0, 25, 50, 75, 100, 100, 0])
    assert (row.scale, row.min, row.max) == ("percent", 0, 100)
    assert row.reason.endswith("with exact 0s and 100s")
    # only an exact 100, no 0
    assert _one([30.5, 60, 100, 80, 45]).scale == "percent"
    # no exact 0 or 100: continuous on the observed range
    row = _one([12.5, 30, 45.2, 60, 99.5])
    assert row.scale == "continuous"


def test_rule_percent_against_count():
    # whole numbers, right-skewed (p = 0.2: skewness 1.5), below 100: a count ...
    row = _one(_two_point(0, 40, 80, 20))
    assert (row.scale, row.cap) == ("count", 40)
    # ... up to exactly 100: a percentage
    assert _one(_two_point(0, 100, 80, 20)).scale == "percent"
    # not skewed (p = 0.3: skewness 0.87): a percentage with its 0s
    assert _one(_two_point(0, 40, 70, 30)).scale == "percent"
    # not whole numbers: a percentage however skewed
    assert _one(_two_point(0, 40.5, 80, 20)).scale == "percent"


def test_rule_proportions():
    rng = np.random.default_rng(2)
    prop = list(np.r_[0.0, 0.0, rng.uniform(0, 1, 9)])  # 10 distinct values: too few
    assert _one(prop).scale == "continuous"
    row = _one(prop + [0.123])  # 11 distinct values
    assert (row.scale, row.min, row.max) == ("percent", 0, 1)
    assert "(proportions)" in row.reason


def test_rule_count_and_its_skewness_boundary():
    # 5 and 25: no 0 or 100, so only the skewness decides
    row = _one(_two_point(5, 25, 80, 20))  # skewness 1.5
    assert (row.scale, row.min, row.max, row.cap) == ("count", 0, 25, 25)
    assert "long right tail (skewness 1.5)" in row.reason
    row = _one(_two_point(5, 25, 70, 30))  # skewness 0.87
    assert (row.scale, row.min, row.max) == ("continuous", 5, 25)
    assert "not skewed (skewness 0.9)" in row.reason
    rng = np.random.default_rng(3)
    counts = rng.negative_binomial(1, 0.05, 300)
    row = _one(list(counts))
    assert (row.scale, row.cap) == ("count", counts.max())


def test_rule_continuous_rounds_its_range_outward():
    row = _one([-2.7111624789659685, 0.5, 2.1178387550510482])
    assert (row.scale, row.min, row.max) == ("continuous", -2.72, 2.12)
    assert row.reason == "numbers from -2.711 to 2.118 (range rounded outward)"
    row = _one([-20, 5, 40, 13])  # whole numbers, negative, wide
    assert (row.scale, row.min, row.max) == ("continuous", -20, 40)


def test_cells_as_read_from_a_file():
    # CSV cells are text: blanks are missing, numbers are parsed
    row = _one(["1", " 2 ", "", "   ", None, float("nan"), "5", "3.0", "4"])
    assert (row.scale, row.min, row.max, row.n_answers) == ("likert", 1, 5, 5)


def test_inference_errors_name_columns_and_cells():
    frame = pd.DataFrame({
        "school": ["Oak", "Elm", "Oak", "3"],
        "empty": ["", None, "  ", ""],
        "same": [3, 3, None, 3],
        "flags": [True, False, True, True],
        "inf": [1.0, float("inf"), 2.0, 3.0],
        "ok": [1, 2, 3, 4],
    })
    with pytest.raises(ScaleError) as info:
        infer_scales(frame, ["school", "empty", "same", "flags", "inf", "ok", "scool"])
    msg = str(info.value)
    assert "6 problems" in msg
    assert "column 'school' is not numeric: 'Oak' (row 2), 'Elm' (row 3), ... (3 cells in all)" in msg
    assert "column 'empty' has no answers" in msg
    assert "column 'same' has one answer only (3 for every firm that answered)" in msg
    assert "column 'flags' is not numeric: True (row 2), False (row 3)" in msg
    assert "column 'inf' is not numeric: inf (row 3)" in msg
    assert "column 'scool' is not in the data (did you mean 'school'?)" in msg
    assert "'ok'" not in msg


def test_infer_takes_a_model_and_formats_a_table():
    frame = pd.DataFrame({"a": [0, 1, 1], "b": [1, 2, 5], "c": [1, 2, 3]})
    table = infer_scales(frame, {"f1": ("a", "b"), "f2": ("c",)})
    assert list(table.columns) == ["item", "scale", "min", "max", "cap", "n_levels", "n_answers", "reason"]
    assert list(table["item"]) == ["a", "b", "c"]
    text = format_scales(table)
    assert text.splitlines()[0].split() == ["item", "scale", "range", "levels", "why"]
    assert "0/1" in text and "1 to 5" in text


# ---------------------------------------------------------------------------
# overrides
# ---------------------------------------------------------------------------
def test_override_grammar():
    got = parse_scale_overrides(["x1=binary", "x2=likert", "x3 = likert:1-7", "x4=STAGE:0-4", "x5=percent",
                                 "x6=percent:0-1", "x7=count", "x8=count:50", "x9=continuous:-3-3",
                                 "x10=continuous:-10--2.5"])
    assert got["x1"] == ScaleOverride("x1", "binary")
    assert got["x2"] == ScaleOverride("x2", "likert")
    assert got["x3"] == ScaleOverride("x3", "likert", 1, 7)
    assert got["x4"] == ScaleOverride("x4", "stage", 0, 4)
    assert got["x6"] == ScaleOverride("x6", "percent", 0, 1)
    assert got["x7"] == ScaleOverride("x7", "count")
    assert got["x8"] == ScaleOverride("x8", "count", 0, 50)
    assert got["x9"] == ScaleOverride("x9", "continuous", -3, 3)
    assert got["x10"] == ScaleOverride("x10", "continuous", -10, -2.5)
    assert got["x3"].text == "x3=likert:1-7" and got["x8"].text == "x8=count:50"
    assert parse_scale_overrides(None) == {}


@pytest.mark.parametrize("value, words", [
    ("x1=lickert", ["unknown scale 'lickert' (did you mean 'likert'?)", "allowed: likert, stage"]),
    ("x9=count", ["'x9' is not an item of the model", "items: x1, x2"]),
    ("x_1=count", ["(did you mean 'x1'?)"]),
    ("x1", ["write ITEM=SCALE or ITEM=SCALE:MIN-MAX"]),
    ("=likert", ["write ITEM=SCALE"]),
    ("x1=", ["write ITEM=SCALE"]),
    ("x1=binary:0-1", ["a binary item has no range"]),
    ("x1=likert:1..7", ["the range is MIN-MAX"]),
    ("x1=likert:7-1", ["maximum (1) must be greater than its minimum (7)"]),
    ("x1=likert:1-6.5", ["whole numbers"]),
    ("x1=count:0-50", ["a count takes its cap"]),
    ("x1=count:0", ["a count takes its cap"]),
])
def test_override_errors(value, words):
    with pytest.raises(ScaleError) as info:
        parse_scale_overrides([value], items=["x1", "x2"])
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_override_given_twice():
    with pytest.raises(ScaleError, match="given twice"):
        parse_scale_overrides(["x1=count", "x1=likert:1-5"])


def test_overrides_replace_the_inference():
    frame = pd.DataFrame({"a": [1, 2, 3, 4], "b": [2, 3, 4, 5], "c": [7, 7, 7, 7], "d": [0, 3, 5, 60]})
    o = parse_scale_overrides(["a=likert:1-7", "b=count", "c=likert:1-7", "d=continuous:0-100"])
    table = infer_scales(frame, ["a", "b", "c", "d"], overrides=o).set_index("item")
    assert tuple(table.loc["a", ["scale", "min", "max"]]) == ("likert", 1, 7)
    assert table.loc["a", "reason"] == "given (likert:1-7)"
    assert tuple(table.loc["b", ["scale", "min", "max", "cap"]]) == ("count", 0, 5, 5)  # cap: observed max
    assert tuple(table.loc["c", ["scale", "min", "max"]]) == ("likert", 1, 7)  # a constant column, given
    assert tuple(table.loc["d", ["scale", "min", "max"]]) == ("continuous", 0, 100)


def test_overrides_that_do_not_fit_the_answers():
    frame = pd.DataFrame({"a": [1, 2, 9, 0], "b": [0, 1, 2, 1], "c": [0.5, 2, 3, 4], "e": [150, 3, 4, 5],
                          "f": [4, 4, 4, 4]})
    o = parse_scale_overrides(["a=likert:1-7", "b=binary", "c=count", "e=percent", "f=continuous"])
    with pytest.raises(ScaleError) as info:
        infer_scales(frame, ["a", "b", "c", "e", "f"], overrides=o)
    msg = str(info.value)
    assert "scale 'a=likert:1-7': 2 answer(s) of a do not fit: 9, 0; allowed: whole numbers 1 to 7" in msg
    assert "scale 'b=binary': 1 answer(s) of b do not fit: 2" in msg
    assert "scale 'c=count': 1 answer(s) of c do not fit: 0.5" in msg
    assert "scale 'e=percent': 1 answer(s) of e do not fit: 150" in msg
    assert "every answer of f is 4; give the range" in msg


# ---------------------------------------------------------------------------
# the spec (needs the light spec form: no sub-dimensions, no profiles)
# ---------------------------------------------------------------------------
def _frame(n=120, seed=7):
    """Six continuous items on two correlated factors, an id, a text column and a covariate."""
    rng = np.random.default_rng(seed)
    eta = rng.multivariate_normal([0, 0], [[1, 0.4], [0.4, 1]], size=n)
    loadings = np.array([0.9, 0.8, 0.7])
    items = {}
    for f, names in enumerate(("abc", "def")):
        for k, name in enumerate(names):
            items[name] = (3 + loadings[k] * eta[:, f] + rng.normal(0, 0.5, n)).round(3)
    return pd.DataFrame({"id": [f"S{i:03d}" for i in range(n)],
                         "school": rng.choice(["Oak Hill", "Elm Park", "Grant"], n),
                         "age": rng.integers(30, 60, n), **items})


def _mixed_frame():
    rng = np.random.default_rng(11)
    n = 80
    return pd.DataFrame({
        "firm": [f"F{i}" for i in range(n)], "region": rng.choice(["north", "south"], n),
        "q1": rng.integers(1, 6, n), "q2": rng.integers(1, 6, n), "q3": rng.integers(0, 2, n),
        "export": np.where(rng.random(n) < 0.4, 0.0, rng.uniform(1, 100, n)).round(1),
        "patents": rng.negative_binomial(1, 0.1, n), "score": rng.normal(50, 10, n).round(2),
    })


def test_spec_round_trip(tmp_path):
    frame = _mixed_frame()
    built = spec_from_model("intl =~ export + q3 + patents\nindep =~ q1 + q2 + score", frame,
                            scales=["q2=likert:1-7"], name="mixed", id_column="firm", group_column="region",
                            source="<test>")
    spec = built.spec
    assert spec.text == built.toml
    assert parse_spec(built.toml, source="<test>") == spec
    p = tmp_path / "mixed.toml"
    p.write_text(built.toml, encoding="utf-8")
    assert load_spec(p) == spec.replace(source=str(p))
    assert spec.name == "mixed" and spec.id_column == "firm" and spec.group_column == "region"
    assert spec.outcome_column is None and spec.extra_columns == ()
    assert spec.construct_names == ("intl", "indep")
    assert spec.item_names == ("export", "q3", "patents", "q1", "q2", "score")
    assert [spec.item(i).scale for i in spec.item_names] == ["percent", "binary", "count", "likert", "likert",
                                                             "continuous"]
    assert (spec.item("q2").min, spec.item("q2").max) == (1, 7)
    assert spec.item("patents").cap == frame["patents"].max()
    assert spec.findings == () and spec.profiles.types == ()
    # the light form: no sub-dimensions, profiles or findings; the family's range keys
    text = built.toml
    for absent in ("subdimension", "[profiles", "[[findings", "[sampler"):
        assert absent not in text
    assert "cap = " in text and 'outcome_column = ""' in text and "extra_columns = []" in text
    assert "# q2: given (likert:1-7)" in text
    assert list(built.scales["item"]) == list(spec.item_names)
    assert built.model == {"intl": ("export", "q3", "patents"), "indep": ("q1", "q2", "score")}


def test_spec_without_id_or_group_column():
    built = spec_from_model(TWO_FACTORS, _frame())
    assert "id_column" not in built.toml
    assert 'group_column = ""' in built.toml
    assert built.spec.group_column is None
    assert built.spec.name == "model" and built.spec.source == "<model syntax>"


def test_spec_overrides_as_a_mapping():
    frame = _mixed_frame()
    built = spec_from_model("f =~ q1 + q2 + score", frame,
                            scales={"q1": "likert:1-7", "score": ScaleOverride("score", "continuous", 0, 100)})
    assert (built.spec.item("q1").max, built.spec.item("score").max) == (7, 100)


def test_spec_refuses_columns_it_cannot_use():
    frame = _frame()
    with pytest.raises(UserError, match=r"not columns of the data: 'g'; columns: id, school"):
        spec_from_model("f1 =~ a + b + g", frame)
    with pytest.raises(UserError, match="id_column: 'ident' is not a column of the data"):
        spec_from_model(TWO_FACTORS, frame, id_column="ident")
    with pytest.raises(UserError, match="group_column: 'a' is also an item of the model"):
        spec_from_model(TWO_FACTORS, frame, group_column="a")
    with pytest.raises(ScaleError, match="column 'school' is not numeric"):
        spec_from_model("f1 =~ a + b + school", frame)
    with pytest.raises(ScaleError, match="not an item of the model"):
        spec_from_model(TWO_FACTORS, frame, scales=["g=count"])
    with pytest.raises(ModelSyntaxError, match="cross-loadings"):
        spec_from_model("f1 =~ a + b\nf2 =~ b + c", frame)


# ---------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------
@pytest.fixture()
def csv_file(tmp_path):
    p = tmp_path / "data.csv"
    _frame().to_csv(p, index=False)
    return p


def test_cli_spec_prints_and_writes(csv_file, tmp_path, capsys):
    # no --out: the spec on stdout, the table on stderr
    assert main(["spec", str(csv_file), "--model", TWO_FACTORS, "--id-column", "id"]) == 0
    captured = capsys.readouterr()
    spec = parse_spec(captured.out)
    assert spec.item_names == tuple("abcdef") and spec.id_column == "id"
    assert all(i.scale == "continuous" for i in spec.items)
    assert "scales of the items, inferred from" in captured.err and "continuous" in captured.err

    out = tmp_path / "spec.toml"
    assert main(["spec", str(csv_file), "--model", TWO_FACTORS, "--id-column", "id", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"wrote {out}" in captured.out and "why" in captured.out
    assert out.read_text() == parse_spec(out.read_text()).text
    before = out.read_text()
    # never overwritten without --force
    assert main(["spec", str(csv_file), "--model", "f1 =~ a + b", "--out", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == before
    assert main(["spec", str(csv_file), "--model", "f1 =~ a + b", "--out", str(out), "--force"]) == 0
    assert load_spec(out).item_names == ("a", "b")
    assert not list(tmp_path.glob("*.tmp"))


def test_cli_spec_from_a_model_file_with_overrides(csv_file, tmp_path, capsys):
    model = tmp_path / "two.lav"
    model.write_text("# two factors\nf1 =~ a + b + c\nf2 =~ d + e + f\n")
    assert main(["spec", str(csv_file), "--model", str(model), "--scale", "age=count", "--scale", "a=continuous:0-6",
                 "--group-column", "school"]) == 2
    assert "'age' is not an item of the model" in capsys.readouterr().err
    assert main(["spec", str(csv_file), "--model", str(model), "--scale", "a=continuous:0-6",
                 "--group-column", "school"]) == 0
    spec = parse_spec(capsys.readouterr().out)
    assert spec.name == "two" and spec.group_column == "school"
    assert (spec.item("a").min, spec.item("a").max) == (0, 6)


def test_cli_validate_with_a_model(csv_file, capsys):
    assert main(["validate", str(csv_file), "--model", TWO_FACTORS, "--id-column", "id"]) == 0
    captured = capsys.readouterr()
    assert "valid for spec model (120 firms, 6 items)" in captured.out
    assert "scales of the items" in captured.err and "scales of the items" not in captured.out


@pytest.mark.parametrize("args, words", [
    (["validate", "{data}", "--model", "f1 =~ a + b", "--spec", "hitachi.toml"], ["--spec and --model exclude"]),
    (["validate", "{data}", "--scale", "a=count"], ["--scale goes with --model"]),
    (["validate", "{data}", "--id-column", "id"], ["--id-column goes with --model"]),
    (["fit", "{data}", "--group-column", "school"], ["--group-column goes with --model"]),
    (["spec", "{data}"], ["smeintl spec needs the model"]),
    (["validate", "{data}", "--model", "f1 =~ a + b\nf1 ~ school"], ["invalid model syntax (--model)",
                                                                     "line 2: `f1 ~ school`", "regressions"]),
    (["validate", "{data}", "--model", "f1 =~ a + school"], ["column 'school' is not numeric: 'Grant' (row 2)", "(120 cells in all)"]),
    (["validate", "{data}", "--model", "f1 =~ a + zz"], ["not columns of the data: 'zz'"]),
    (["validate", "{data}", "--model", "f1 =~ a + b", "--scale", "a=lickert"], ["(did you mean 'likert'?)"]),
    (["validate", "{data}", "--model", "missing.lav"], ["model file missing.lav not found"]),
    (["indices", "{data}", "--model", "f1 =~ a + b", "--id-column", "nope"], ["'nope' is not a column"]),
    (["spec", "{data}", "--model", "f1 =~ a + b", "--out", "{folder}"], ["is a folder"]),
])
def test_cli_model_mistakes_exit_2(csv_file, tmp_path, capsys, args, words):
    argv = [a.format(data=csv_file, folder=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)


def test_cli_fit_with_a_model_records_the_generated_spec(csv_file, tmp_path, capsys):
    from smeintl.measurement import load_fit

    spec_file = tmp_path / "spec.toml"
    assert main(["spec", str(csv_file), "--model", TWO_FACTORS, "--id-column", "id", "--out", str(spec_file)]) == 0
    out = tmp_path / "fit.nc"
    capsys.readouterr()
    assert main(["fit", str(csv_file), "--quick", "--model", TWO_FACTORS, "--id-column", "id", "--out", str(out),
                 "--no-progress", "--seed", "5"]) == 0
    captured = capsys.readouterr()
    assert "scales of the items" in captured.err and "scales of the items" not in captured.out
    assert "fitting model to 120 firms" in captured.out
    idata, model = load_fit(out)
    assert model.spec.text == spec_file.read_text()  # the fit records the generated spec
    assert model.spec.item_names == tuple("abcdef")
    # the fit's summary reads it back, also as the parameter table in CSV and JSON
    assert main(["summary", str(out)]) == 0
    assert "spec model" in capsys.readouterr().out
    assert main(["summary", str(out), "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    loadings = table[(table["block"] == "loading") & (table["scale"] == "data")]
    assert sorted(loadings["item"]) == list("abcdef") and (loadings["lower"] <= loadings["mean"]).all()
    assert main(["summary", str(out), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["metadata"]["spec"] == "model" and len(doc["parameters"]) == len(table)
    # no typology in a spec built from a model: comparison and robustness say why, write nothing
    for cmd in ("compare", "robustness"):
        folder = tmp_path / cmd
        assert main([cmd, str(out), "--out", str(folder)]) == 2
        err = capsys.readouterr().err
        assert "the spec declares no ideal types" in err and "Traceback" not in err
        assert not folder.exists()
