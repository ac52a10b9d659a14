"""Fuzz tests (hypothesis): whatever a data file or a study file holds, the readers and
the command line give a result or one clear user error, never a traceback.

* data readers: random bytes as ``.csv`` / ``.xlsx`` / ``.sav``, valid files of each format
  with random bytes written over them, random CSV text (random columns from the
  instrument and elsewhere, random cells, separators, quoting and encodings), and random
  Excel workbooks written with openpyxl (sheets, cell types, number formats, formulas);
* the study loader (``smeintl.study.config``): random TOML with the study's tables and
  keys and random values, and random bytes as a study file through ``smeintl study``;
* the spec loader (``smeintl.spec``): random bytes as a spec file (and the bundled spec
  with random bytes written over it), random TOML documents with the spec's tables and
  keys (and others) and random values, and the bundled specs with keys dropped, renamed
  and given values of another type: ``smeintl validate <bundled data> --spec FILE``
  validates or exits with 2 and one message, and ``load_spec`` gives a Spec or a
  SpecError naming the file, never a traceback.

Each property runs a fixed budget in the default suite (``FAST``: a few seconds in all)
and a longer one behind the ``slow`` marker (``-m slow``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import tempfile
import tomllib
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, reject, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from smeintl.cli import main  # noqa: E402
from smeintl.data import DataError, Survey, read_table, survey_from_frame, validate_frame  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = ROOT / "src" / "smeintl" / "bundled"  # the bundled files (smeintl.resources)
DATA = BUNDLE_DIR / "hitachi_synthetic.csv"
SPEC = BUNDLE_DIR / "hitachi.toml"
TINY = BUNDLE_DIR / "tiny_instrument.toml"

_COMMON = dict(deadline=None, database=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
FAST = settings(max_examples=40, **_COMMON)
SLOW = settings(max_examples=1000, **_COMMON)

_DIR = Path(tempfile.mkdtemp(prefix="smeintl-fuzz-"))
_COUNT = itertools.count()


def _path(ext: str) -> Path:
    return _DIR / f"f{next(_COUNT)}{ext}"


_SPECS: dict = {}


def _spec(path: Path = SPEC):
    if path not in _SPECS:
        from smeintl import load_spec

        _SPECS[path] = load_spec(path)
    return _SPECS[path]


def _readers_accept_or_refuse(path: Path, *, sheet=0, encoding=None, spec_path: Path = SPEC) -> None:
    """The property: reading and validating ``path`` gives a frame, then a Survey or a list
    of problems, or one DataError naming the file; nothing else escapes."""
    spec = _spec(spec_path)
    try:
        frame = read_table(path, sheet=sheet, encoding=encoding)
    except DataError as exc:
        assert exc.problems and str(path) in str(exc)
        return
    problems = validate_frame(frame, spec, source=str(path))
    assert isinstance(problems, list) and all(isinstance(p, str) and str(path) in p for p in problems)
    try:
        survey = survey_from_frame(frame, spec, source=str(path))
    except DataError as exc:
        assert exc.problems == problems and problems
        return
    assert not problems and isinstance(survey, Survey)
    assert survey.n_firms >= 1 and survey.data_hash


def _valid_files() -> dict[str, bytes]:
    """The bundled survey as CSV, Excel and SPSS bytes (the seeds of the mutations)."""
    import pandas as pd
    import pyreadstat

    frame = pd.read_csv(DATA, dtype={"firm_id": str})
    out = {".csv": DATA.read_bytes()}
    xlsx, sav = _path(".xlsx"), _path(".sav")
    frame.to_excel(xlsx, index=False)
    pyreadstat.write_sav(frame, str(sav))
    out[".xlsx"], out[".sav"] = xlsx.read_bytes(), sav.read_bytes()
    return out


_VALID: dict[str, bytes] = {}


def _valid(ext: str) -> bytes:
    if not _VALID:
        _VALID.update(_valid_files())
    return _VALID[ext]


# ---------------------------------------------------------------------------
# random bytes, and valid files with random bytes written over them
# ---------------------------------------------------------------------------
EXTS = (".csv", ".xlsx", ".sav")


def check_random_bytes(data: bytes, ext: str) -> None:
    p = _path(ext)
    p.write_bytes(data)
    _readers_accept_or_refuse(p)


@st.composite
def mutated(draw):
    ext = draw(st.sampled_from(EXTS))
    data = bytearray(_valid(ext))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        chunk = draw(st.binary(min_size=1, max_size=64))
        data[at:at + len(chunk)] = chunk
    if draw(st.booleans()):
        data = data[: draw(st.integers(1, len(data)))]  # truncated
    return ext, bytes(data)


@FAST
@given(data=st.binary(max_size=3000), ext=st.sampled_from(EXTS))
def test_random_bytes(data, ext):
    check_random_bytes(data, ext)


@FAST
@given(case=mutated())
def test_damaged_files(case):
    ext, data = case
    check_random_bytes(data, ext)


@pytest.mark.slow
@SLOW
@given(data=st.binary(max_size=20000), ext=st.sampled_from(EXTS))
def test_random_bytes_long(data, ext):
    check_random_bytes(data, ext)


@pytest.mark.slow
@SLOW
@given(case=mutated())
def test_damaged_files_long(case):
    ext, data = case
    check_random_bytes(data, ext)


def check_command_line(data: bytes, ext: str, command: str, capsys) -> None:
    p = _path(ext)
    p.write_bytes(data)
    argv = [command, str(p)] + (["--out", str(_path(""))] if command == "indices" else [])
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc in (0, 2), err
    assert "Traceback" not in err and "bug in smeintl" not in err


@settings(max_examples=25, **_COMMON)
@given(data=st.binary(max_size=2000) | mutated().map(lambda c: c[1]), ext=st.sampled_from(EXTS),
       command=st.sampled_from(["validate", "indices"]))
def test_command_line_on_random_files(data, ext, command, capsys):
    check_command_line(data, ext, command, capsys)


# ---------------------------------------------------------------------------
# random CSV text
# ---------------------------------------------------------------------------
def _columns() -> list[str]:
    spec = _spec()
    return [spec.id_column, spec.group_column, spec.outcome_column, *spec.extra_columns, *spec.item_names]


_CELLS = st.one_of(
    st.just(""),
    st.integers(-5, 200).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(0, 1).map(lambda x: f"{x:.2f}"),
    st.sampled_from(["NA", "-", " ", "007", "7", "7.0", "3,5", "1e400", "nan", "inf", "-inf", "=A1+1",
                     "TRUE", "45%", "1.234,5", "\u00a0", "\ufeff", '"', "a\nb", "0x10", "1_000"]),
    st.text(max_size=6),
)


def _bundled_rows() -> list[list[str]]:
    with open(DATA, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


@st.composite
def csv_file(draw):
    pool = _columns()
    kind = draw(st.sampled_from(["random", "header", "bundled"]))
    if kind == "bundled":  # the bundled survey with random cells, rows and columns changed
        rows = [list(r) for r in _bundled_rows()]
        for _ in range(draw(st.integers(1, 6))):
            r, c = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(rows[0]) - 1))
            rows[r][c] = draw(_CELLS | st.sampled_from(pool))
        if draw(st.booleans()):
            rows = rows[: draw(st.integers(1, len(rows)))]
        if draw(st.integers(0, 3)) == 0:
            c = draw(st.integers(0, len(rows[0]) - 1))
            rows = [r[:c] + r[c + 1:] for r in rows]
    else:
        names = draw(st.lists(st.sampled_from(pool) | st.text(max_size=8), max_size=len(pool) + 2))
        if kind == "header":  # the instrument's own header, so that the cells are checked
            names = pool[: draw(st.integers(len(pool) - 3, len(pool)))]
        rows = [names]
        for _ in range(draw(st.integers(0, 6))):
            width = draw(st.sampled_from([len(names), len(names), max(len(names) - 1, 0), len(names) + 1]))
            rows.append([draw(_CELLS) for _ in range(width)])
    sep = draw(st.sampled_from([",", ",", ",", ",", ";", "\t"]))
    buf = io.StringIO()
    if draw(st.booleans()):
        csv.writer(buf, delimiter=sep, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows(rows)
    else:  # no quoting at all: what a hand-made export may look like
        buf.write("\n".join(sep.join(r) for r in rows))
    text = buf.getvalue()
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "cp932", "latin-1", "utf-16"]))
    data = text.encode(encoding, errors="replace")
    given_encoding = draw(st.sampled_from([None, None, encoding, encoding, "latin-1", "no-such-codec"]))
    return data, given_encoding


def check_csv(case) -> None:
    data, encoding = case
    p = _path(".csv")
    p.write_bytes(data)
    _readers_accept_or_refuse(p, encoding=encoding)


@FAST
@given(case=csv_file())
def test_random_csv(case):
    check_csv(case)


@pytest.mark.slow
@SLOW
@given(case=csv_file())
def test_random_csv_long(case):
    check_csv(case)


# ---------------------------------------------------------------------------
# random Excel workbooks
# ---------------------------------------------------------------------------
_FORMATS = ["General", "0", "000", "00000", '"F"000', "0%", "0.00%", "@", "yyyy-mm-dd", "0.00", "#,##0"]
_SHEET_NAMES = st.text(alphabet="abcXYZ 0129_-", min_size=1, max_size=10).map(str.strip).filter(bool)
_XL_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=8)
_XL_CELLS = st.one_of(
    st.none(), st.integers(-10, 300), st.floats(-1e6, 1e6), st.floats(0, 1), st.booleans(), _XL_TEXT,
    st.sampled_from(["=1+1", "007", "7.0", "NA", 0.45, 7, 3]),
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2030, 1, 1)),
)


@st.composite
def workbook_file(draw):
    import openpyxl

    pool = _columns()
    sheets = draw(st.lists(_SHEET_NAMES, min_size=1, max_size=3, unique=True))
    data_sheet = draw(st.sampled_from(sheets))
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name in sheets:
        ws = wb.create_sheet(name)
        if name != data_sheet:
            for _ in range(draw(st.integers(0, 2))):
                ws.append([draw(_XL_CELLS) for _ in range(draw(st.integers(0, 3)))])
            continue
        names = pool if draw(st.booleans()) else draw(st.lists(st.sampled_from(pool) | _XL_TEXT, max_size=8))
        ws.append(list(names))
        for r in range(draw(st.integers(0, 5))):
            for c in range(len(names) + draw(st.integers(-1, 1))):
                cell = ws.cell(row=r + 2, column=c + 1, value=draw(_XL_CELLS))
                cell.number_format = draw(st.sampled_from(_FORMATS))
    p = _path(".xlsx")
    try:
        wb.save(p)
    except Exception:  # noqa: BLE001 - a cell openpyxl itself cannot write: not a case
        reject()
    sheet = draw(st.sampled_from([0, 1, data_sheet, "2", "no such sheet"]))
    return p, sheet


def check_workbook(case) -> None:
    p, sheet = case
    _readers_accept_or_refuse(p, sheet=sheet)


@FAST
@given(case=workbook_file())
def test_random_workbooks(case):
    check_workbook(case)


@pytest.mark.slow
@SLOW
@given(case=workbook_file())
def test_random_workbooks_long(case):
    check_workbook(case)


# ---------------------------------------------------------------------------
# the study loader: random TOML
# ---------------------------------------------------------------------------
_SCALARS = st.one_of(st.booleans(), st.integers(-3, 50), st.integers(), st.floats(allow_nan=True),
                     st.text(max_size=6), st.sampled_from(["recovery", "sbc", "comparison", "pymc", "nutpie",
                                                           "auto", "loading[0]", "eta[0, doi]", "corr"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=5), inner, max_size=2), max_leaves=6)
_KEYS = {
    "study": ("name", "description", "instrument", "seed", "replications", "kind"),
    "grid": ("n_firms", "loading", "missing", "n_groups", "correlation", "group_sd", "shift_doi", "shift_x"),
    "fit": ("draws", "tune", "chains", "sampler", "target_accept", "group", "compare_draws"),
    "sbc": ("parameters", "thin", "bins"),
}
_INSTRUMENTS = st.sampled_from([str(TINY), str(SPEC), "tiny_instrument.toml", "missing.toml", "", ".",
                                str(BUNDLE_DIR), str(DATA), "a\u0000b.toml"])


@st.composite
def study_text(draw):
    import tomli_w

    base = {"study": {"instrument": str(TINY), "seed": 1, "replications": 1, "kind": "recovery"}}
    doc: dict = {} if draw(st.booleans()) else {k: dict(v) for k, v in base.items()}
    for table, keys in _KEYS.items():
        if draw(st.integers(0, 3)) == 0:
            continue
        t = doc.setdefault(table, {})
        for key in draw(st.lists(st.sampled_from(keys) | st.text(max_size=4), max_size=4)):
            t[key] = draw(_INSTRUMENTS) if key == "instrument" else draw(_VALUES)
    if draw(st.integers(0, 5)) == 0:
        doc[draw(st.text(max_size=4))] = draw(_VALUES)  # an unknown table or key at the top
    try:
        text = tomli_w.dumps(doc)
    except Exception:  # noqa: BLE001 - a document TOML cannot hold
        reject()
    if draw(st.integers(0, 6)) == 0:  # and now and then, broken TOML
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        text = text[:at] + draw(st.sampled_from(["[", "=", '"', "\n[[x]]\n", "\x00"])) + text[at:]
    return text


def check_study(text: str) -> None:
    from smeintl.spec import SpecError
    from smeintl.study.config import Study, parse_study

    try:
        study = parse_study(text, source="fuzz.toml", base_dir=BUNDLE_DIR)
    except SpecError as exc:  # StudyError is one
        assert exc.problems and "fuzz.toml" in str(exc)
        return
    assert isinstance(study, Study) and len(study.tasks()) >= 1


@FAST
@given(text=study_text())
def test_random_study_files(text):
    check_study(text)


@pytest.mark.slow
@SLOW
@given(text=study_text())
def test_random_study_files_long(text):
    check_study(text)


@settings(max_examples=20, **_COMMON)
@given(data=st.binary(max_size=500) | study_text().map(lambda t: t.encode("utf-8", errors="replace")))
def test_study_command_on_random_files(data, capsys):
    p = _path(".toml")
    p.write_bytes(data)
    rc = main(["study", str(p), "--dry-run"])
    err = capsys.readouterr().err
    assert rc in (0, 2), err
    assert "Traceback" not in err and "bug in smeintl" not in err


# ---------------------------------------------------------------------------
# the spec loader: random bytes, random TOML, the bundled specs mutated
# ---------------------------------------------------------------------------
SPEC_FILES = [SPEC, TINY, *sorted((ROOT / "tests" / "data").glob("**/*.toml"))]


def check_spec_file(data: bytes, capsys) -> None:
    """The property: ``read_spec`` (what every command calls) gives a Spec or a SpecError
    naming the file with its problems; ``smeintl validate`` with the bundled data then
    exits with 0 or 2 and one message, never a traceback."""
    from smeintl.api import read_spec
    from smeintl.spec import Spec, SpecError

    p = _path(".toml")
    p.write_bytes(data)
    try:
        spec = read_spec(p)
    except SpecError as exc:
        assert exc.problems and all(isinstance(m, str) and m for m in exc.problems)
        assert str(exc).startswith(f"invalid spec {p}: {len(exc.problems)} problem(s)")
        spec = None
    assert spec is None or isinstance(spec, Spec)
    rc = main(["validate", str(DATA), "--spec", str(p)])
    err = capsys.readouterr().err
    assert rc in (0, 2), err
    assert "Traceback" not in err and "bug in smeintl" not in err
    assert (rc == 2 and f"invalid spec {p}" in err) == (spec is None), err


@st.composite
def damaged_spec(draw):
    data = bytearray(draw(st.sampled_from(SPEC_FILES)).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1))
        chunk = draw(st.binary(min_size=1, max_size=16) | st.sampled_from([b"=", b"[", b"]]", b'"', b"\n", b"0"]))
        data[at:at + len(chunk)] = chunk
    return bytes(data)


@FAST
@given(data=st.binary(max_size=2000) | damaged_spec())
def test_random_bytes_as_spec(data, capsys):
    check_spec_file(data, capsys)


@pytest.mark.slow
@SLOW
@given(data=st.binary(max_size=20000) | damaged_spec())
def test_random_bytes_as_spec_long(data, capsys):
    check_spec_file(data, capsys)


def _spec_keys() -> dict[str, tuple[str, ...]]:
    """The keys of each table of a spec (and of the tables in them)."""
    from smeintl.spec import DEFAULT_PRIORS, DEFAULT_SAMPLER
    from smeintl.spec_checks import ITEM_KEYS, RANGE_KEYS, TABLE_KEYS
    from smeintl.spec_findings import COMMON_KEYS, FINDING_KINDS

    keys = {k.strip("[]"): v for k, v in TABLE_KEYS.items() if k != "spec"}
    keys["items"] = (*ITEM_KEYS, *RANGE_KEYS)
    keys["findings"] = (*COMMON_KEYS, *sorted({p for k in FINDING_KINDS.values() for p in k.parameters}))
    keys["priors"] = tuple(DEFAULT_PRIORS)
    keys["sampler"] = tuple(DEFAULT_SAMPLER)
    return keys


_SPEC_WORDS = st.sampled_from([
    "doi", "independence", "stage", "performance", "dependence", "technology", "likert", "percent", "count",
    "binary", "continuous", "poisson", "firm_id", "industry", "outcome", "employees", "mnc_follower",
    "independent_domestic", "hybrid", "share_above", "share_between", "no_type", "groups_differ",
    "positive_correlation", "LogNormal", "HalfNormal", "Normal", "Gamma", "Beta", "auto", "pymc", "nutpie", "",
])
_SPEC_SCALARS = _SCALARS | _SPEC_WORDS | st.floats(-0.5, 1.5) | st.sampled_from([0, 1, 0.5, 2**32, -1, 1e308])
_SPEC_VALUES = st.recursive(_SPEC_SCALARS, lambda inner: st.lists(inner, max_size=4)
                            | st.dictionaries(_SPEC_WORDS | st.sampled_from(["dist", "mu", "sigma", "eta", "name"]),
                                              inner, max_size=3), max_leaves=8)
_ARRAY_TABLES = ("constructs", "items", "findings")


@st.composite
def spec_text(draw):
    """A random TOML document: the spec's tables and keys (and others), random values;
    now and then on top of a valid spec, now and then broken TOML."""
    import tomli_w

    keys = _spec_keys()
    doc: dict = tomllib.loads(TINY.read_text(encoding="utf-8")) if draw(st.booleans()) else {}

    def table(name):
        t = {}
        for key in draw(st.lists(st.sampled_from(keys[name]) | st.text(max_size=5), max_size=5)):
            t[key] = draw(_SPEC_VALUES)
        return t

    for name in keys:
        if "." in name or draw(st.integers(0, 2)) == 0:
            continue
        if name in _ARRAY_TABLES:
            doc[name] = [table(name) for _ in range(draw(st.integers(0, 3)))]
        else:
            doc[name] = table(name)
            if name.endswith("profiles") and draw(st.booleans()):
                doc[name]["types"] = [table(f"{name}.types") for _ in range(draw(st.integers(0, 3)))]
    if draw(st.integers(0, 5)) == 0:
        doc[draw(st.text(max_size=6))] = draw(_SPEC_VALUES)  # an unknown table or key at the top
    try:
        text = tomli_w.dumps(doc)
    except Exception:  # noqa: BLE001 - a document TOML cannot hold
        reject()
    if draw(st.integers(0, 6)) == 0:
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        text = text[:at] + draw(st.sampled_from(["[", "=", '"', "\n[[items]]\n", "\x00"])) + text[at:]
    return text


def _places(node, out):
    """Every (container, key or index) in a parsed TOML document."""
    pairs = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in list(pairs):
        out.append((node, k))
        if isinstance(v, (dict, list)):
            _places(v, out)
    return out


@st.composite
def mutated_spec(draw):
    """A bundled spec with 1 to 4 keys dropped, renamed (a typo, another key, anything)
    or given a value of another type."""
    import tomli_w

    doc = tomllib.loads(draw(st.sampled_from(SPEC_FILES)).read_text(encoding="utf-8"))
    words = sorted({k for v in _spec_keys().values() for k in v})
    for _ in range(draw(st.integers(1, 4))):
        places = _places(doc, [])
        if not places:
            break
        node, key = places[draw(st.integers(0, len(places) - 1))]
        op = draw(st.sampled_from(["drop", "rename", "retype", "retype"]))
        if op == "drop":
            del node[key]
        elif op == "rename" and isinstance(node, dict):
            new = draw(st.sampled_from([key[:-1], key + "s", key.replace("_", ""), key.upper(), key[1:] or "x"])
                       | st.sampled_from(words) | st.text(min_size=1, max_size=6))
            node[new] = node.pop(key)
        else:
            node[key] = draw(_SPEC_VALUES)
    try:
        return tomli_w.dumps(doc)
    except Exception:  # noqa: BLE001 - a document TOML cannot hold
        reject()


@FAST
@given(text=spec_text())
def test_random_spec_files(text, capsys):
    check_spec_file(text.encode("utf-8", errors="replace"), capsys)


@FAST
@given(text=mutated_spec())
def test_mutated_spec_files(text, capsys):
    check_spec_file(text.encode("utf-8", errors="replace"), capsys)


@pytest.mark.slow
@SLOW
@given(text=spec_text())
def test_random_spec_files_long(text, capsys):
    check_spec_file(text.encode("utf-8", errors="replace"), capsys)


@pytest.mark.slow
@SLOW
@given(text=mutated_spec())
def test_mutated_spec_files_long(text, capsys):
    check_spec_file(text.encode("utf-8", errors="replace"), capsys)
