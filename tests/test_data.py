"""Tests of smeintl.data: readers, validation messages, the Survey container, bundled data."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smeintl.data import (
    MAX_LISTED_PROBLEMS,
    DataError,
    Survey,
    load_survey,
    read_table,
    survey_from_frame,
    survey_to_csv,
    validate_frame,
)
from smeintl.spec import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = ROOT / "src" / "smeintl" / "bundled"  # the bundled files (smeintl.resources)
BUNDLED = BUNDLE_DIR / "hitachi_synthetic.csv"
SCRIPT = ROOT / "scripts" / "make_synthetic_data.py"


@pytest.fixture(scope="module")
def spec():
    return load_spec()


@pytest.fixture(scope="module")
def bundled_rows() -> list[dict[str, str]]:
    with open(BUNDLED, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    """Write rows (dicts of text) as CSV; ``columns`` picks and orders the header."""
    columns = columns or list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([r.get(c, "") for c in columns])
    return path


def copy_rows(rows):
    return [dict(r) for r in rows]


def problems_of(path: Path, spec) -> list[str]:
    with pytest.raises(DataError) as exc:
        load_survey(path, spec)
    err = exc.value
    assert err.source == str(path)
    # every problem is also in the message
    for p in err.problems[:MAX_LISTED_PROBLEMS]:
        assert p in str(err)
    return err.problems


def only_problem(path: Path, spec) -> str:
    problems = problems_of(path, spec)
    assert len(problems) == 1, problems
    return problems[0]


# ---------------------------------------------------------------------------
# bundled data
# ---------------------------------------------------------------------------
def test_bundled_survey_loads(spec):
    s = load_survey(BUNDLED, spec)
    assert s.n_firms == 41
    assert list(s.firms.index) == [f"F{i:02d}" for i in range(1, 42)]
    assert s.firms.index.name == "firm_id"
    assert list(s.firms.columns) == ["industry", "outcome", "employees"]
    assert list(s.items.columns) == list(spec.item_names)
    assert all(s.items.dtypes == np.float64)
    assert len(s.group_names) == 5
    assert s.groups is not None and s.groups.shape == (41,) and s.groups.dtype.kind == "i"
    # ~3% item non-response, never a whole item, one firm with several gaps
    n_missing = int(s.missing.sum())
    assert 0.02 * 41 * 15 <= n_missing <= 0.04 * 41 * 15
    assert (s.missing < 41).all()
    assert s.items.isna().sum(axis=1).max() >= 3
    # employees are whole numbers; counts above the cap occur (the cap is only for scaling)
    assert (s.firms["employees"] % 1 == 0).all()
    assert s.items["n_customers"].max() > spec.item("n_customers").cap
    # export share has many exact zeros (domestic firms)
    assert (s.items["export_share"] == 0).sum() >= 20


def test_bundled_file_regenerates_byte_for_byte(tmp_path):
    out = tmp_path / "regen.csv"
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == BUNDLED.read_bytes()


def test_generator_refuses_data_that_miss_the_shape(tmp_path):
    out = tmp_path / "seed1.csv"
    res = subprocess.run([sys.executable, str(SCRIPT), "--seed", "1", "--out", str(out)], capture_output=True,
                         text=True)
    assert res.returncode == 1 and "shape targets missed" in res.stderr
    assert not out.exists()


def _deterministic_indices(survey: Survey) -> dict[str, np.ndarray]:
    """Independent minimal implementation of section 2 steps 1-3 (unit weights)."""
    spec = survey.spec
    scaled = {}
    for it in spec.items:
        v = survey.items[it.name].to_numpy(dtype=float)
        if it.scale == "likert":
            s = (v - it.min) / (it.max - it.min)
        elif it.scale == "stage":
            s = v / it.max
        elif it.scale == "percent":
            s = v / 100
        elif it.scale == "count":
            s = np.minimum(v, it.cap) / it.cap
        else:
            s = v
        scaled[it.name] = 1 - s if it.reverse else s
    out = {}
    for c in spec.constructs:
        subs = []
        for sd in c.subdimensions:
            m = np.column_stack([scaled[i.name] for i in spec.items_of(subdimension=sd)])
            present = (~np.isnan(m)).sum(axis=1)
            mean = np.where(np.isnan(m), 0, m).sum(axis=1) / np.maximum(present, 1)
            subs.append(np.where(2 * present < m.shape[1], np.nan, mean))
        out[c.name] = np.nanmean(np.column_stack(subs), axis=1)
    return out


def test_bundled_data_have_the_studys_shape(spec):
    s = load_survey(BUNDLED, spec)
    idx = _deterministic_indices(s)
    doi, ind = idx["doi"], idx["independence"]
    assert 7 <= (doi >= 0.5).sum() <= 9  # about 20% internationalizing
    assert (ind >= 0.5).sum() >= 0.7 * 41  # most independent
    assert ((doi >= 0.5) & (ind < 0.5)).sum() == 0  # no MNC follower
    ind_by = pd.Series(ind).groupby(s.groups).mean()
    doi_by = pd.Series(doi).groupby(s.groups).mean()
    assert doi_by.max() - doi_by.min() >= 0.1 and ind_by.max() - ind_by.min() >= 0.1


def test_codebook_documents_every_column(spec):
    text = (BUNDLE_DIR / "README.md").read_text(encoding="utf-8")
    for col in ["firm_id", "industry", "outcome", "employees", *spec.item_names]:
        assert f"`{col}`" in text
    assert "synthetic" in text.lower() and "python scripts/make_synthetic_data.py" in text


# ---------------------------------------------------------------------------
# formats, hashing, round trips
# ---------------------------------------------------------------------------
def test_same_data_same_hash_from_csv_excel_spss_and_frame(spec, tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    s = load_survey(BUNDLED, spec)
    frame = s.to_frame()
    xlsx = tmp_path / "survey.xlsx"
    frame.to_excel(xlsx, index=False)
    sav = tmp_path / "survey.sav"
    pyreadstat.write_sav(frame, sav)
    # columns in another order: same data, same hash
    shuffled = frame[list(frame.columns[::-1])]
    hashes = {
        load_survey(xlsx, spec).data_hash,
        load_survey(sav, spec).data_hash,
        survey_from_frame(frame, spec).data_hash,
        survey_from_frame(shuffled, spec).data_hash,
    }
    assert hashes == {s.data_hash}
    assert len(s.data_hash) == 64 and int(s.data_hash, 16) >= 0
    # a different answer, a different hash
    other = frame.copy()
    other.loc[0, "overseas_growth"] = 1 if other.loc[0, "overseas_growth"] != 1 else 2
    assert survey_from_frame(other, spec).data_hash != s.data_hash


def test_firm_id_is_text_with_leading_zeros(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)[:3]
    for k, r in enumerate(rows):
        r["firm_id"] = f"00{k + 1}"
    s = load_survey(write_rows(tmp_path / "ids.csv", rows), spec)
    assert list(s.firms.index) == ["001", "002", "003"]
    # Excel: text cells keep their zeros, numeric ids lose only the '.0'
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    cols = list(rows[0])
    ws.append(cols)
    for k, r in enumerate(rows):
        vals = [float(r[c]) if c not in ("firm_id", "industry") and r[c] != "" else (r[c] or None) for c in cols]
        if k == 2:
            vals[0] = 3  # a numeric id cell
        ws.append(vals)
    wb.save(tmp_path / "ids.xlsx")
    s = load_survey(tmp_path / "ids.xlsx", spec)
    assert list(s.firms.index) == ["001", "002", "3"]


def test_reading_never_modifies_the_file(spec, tmp_path):
    frame = load_survey(BUNDLED, spec).to_frame()
    paths = [tmp_path / "a.csv", tmp_path / "a.xlsx"]
    frame.to_csv(paths[0], index=False)
    frame.to_excel(paths[1], index=False)
    for p in paths:
        before = (p.read_bytes(), p.stat().st_mtime_ns)
        load_survey(p, spec)
        read_table(p)
        assert (p.read_bytes(), p.stat().st_mtime_ns) == before
    before = BUNDLED.read_bytes()
    load_survey(BUNDLED, spec)
    assert BUNDLED.read_bytes() == before


def test_survey_to_csv_round_trip_and_refuses_overwrite(spec, tmp_path):
    s = load_survey(BUNDLED, spec)
    out = survey_to_csv(s, tmp_path / "copy.csv")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == s.data_hash
    again = load_survey(out, spec)
    assert again.data_hash == s.data_hash
    pd.testing.assert_frame_equal(again.items, s.items)
    pd.testing.assert_frame_equal(again.firms, s.firms)
    content = out.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        survey_to_csv(s.with_items(s.items.fillna(1)), out)
    assert out.read_bytes() == content
    survey_to_csv(s.with_items(s.items.fillna(1)), out, overwrite=True)
    assert out.read_bytes() != content


def test_survey_container(spec):
    s = load_survey(BUNDLED, spec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.source = "x"  # type: ignore[misc]
    assert s.source == str(BUNDLED)
    # groups: codes into the sorted group names
    assert list(s.group_names) == sorted(set(s.firms["industry"]))
    names = np.array(s.group_names)
    assert (names[s.groups] == s.firms["industry"].to_numpy()).all()
    # missing: per item, spec order
    assert list(s.missing.index) == list(spec.item_names)
    assert (s.missing.to_numpy() == s.items.isna().sum().to_numpy()).all()
    # to_frame: the layout the readers accept
    f = s.to_frame()
    assert list(f.columns) == ["firm_id", "industry", "outcome", "employees", *spec.item_names]
    assert validate_frame(f, spec) == []
    # raw answers, not scaled or reverse coded
    assert s.items["top_customer_share"].max() > 1


def test_with_items(spec):
    s = load_survey(BUNDLED, spec)
    new = s.items.fillna(1.0)
    t = s.with_items(new.iloc[::-1, ::-1])  # any row/column order, aligned by id and name
    pd.testing.assert_frame_equal(t.items, new)
    pd.testing.assert_frame_equal(t.firms, s.firms)
    assert t.data_hash != s.data_hash and s.items.isna().any().any()  # original untouched
    u = s.with_items(new.to_numpy())
    pd.testing.assert_frame_equal(u.items, new)
    bad = new.copy()
    bad.iloc[6, list(spec.item_names).index("overseas_growth")] = 7
    with pytest.raises(DataError, match=r"row 8, column 'overseas_growth': value 7 is out of range"):
        s.with_items(bad)
    with pytest.raises(ValueError, match="shape"):
        s.with_items(new.to_numpy()[:5])
    with pytest.raises(ValueError, match="missing"):
        s.with_items(new.drop(columns="intl_stage"))


def test_valid_frame_is_not_modified(spec):
    f = load_survey(BUNDLED, spec).to_frame()
    f.loc[3, "overseas_growth"] = 9
    before = f.copy()
    problems = validate_frame(f, spec, source="mine")
    assert problems == [
        "mine, row 5, column 'overseas_growth': value 9 is out of range; allowed: whole numbers 1 to 5 "
        "(likert), or empty for a missing answer"
    ]
    pd.testing.assert_frame_equal(f, before)


def test_frame_indexed_by_firm_id_is_accepted(spec):
    s = load_survey(BUNDLED, spec)
    f = s.to_frame().set_index("firm_id")
    assert survey_from_frame(f, spec).data_hash == s.data_hash


def test_spss_value_labels_give_group_names(spec, tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    s = load_survey(BUNDLED, spec)
    f = s.to_frame()
    codes = {name: float(k + 1) for k, name in enumerate(s.group_names)}
    f["industry"] = f["industry"].map(codes).astype(float)
    p = tmp_path / "coded.sav"
    pyreadstat.write_sav(f, p, variable_value_labels={"industry": {v: k for k, v in codes.items()}})
    t = load_survey(p, spec)
    assert t.data_hash == s.data_hash


# ---------------------------------------------------------------------------
# bad input, one kind per test; each message names file, row, column, allowed values
# ---------------------------------------------------------------------------
def test_out_of_range_likert_message_is_exact(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    rows[5]["overseas_growth"] = "7"  # 6th firm -> spreadsheet row 7
    p = write_rows(tmp_path / "data.csv", rows)
    assert only_problem(p, spec) == (
        f"{p}, row 7, column 'overseas_growth': value 7 is out of range; allowed: whole numbers 1 to 5 "
        "(likert), or empty for a missing answer"
    )


def test_relative_path_is_named_as_given(spec, tmp_path, bundled_rows, monkeypatch):
    rows = copy_rows(bundled_rows)
    rows[5]["overseas_growth"] = "7"
    write_rows(tmp_path / "data.csv", rows)
    monkeypatch.chdir(tmp_path)
    msg = only_problem(Path("data.csv"), spec)
    assert msg.startswith("data.csv, row 7, column 'overseas_growth': value 7 is out of range; allowed:")


def test_stage_not_whole(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    rows[0]["intl_stage"] = "2.5"
    p = write_rows(tmp_path / "stage.csv", rows)
    msg = only_problem(p, spec)
    assert msg == (
        f"{p}, row 2, column 'intl_stage': value 2.5 is not a whole number; allowed: whole numbers 0 to 4 "
        "(stage), or empty for a missing answer"
    )


def test_stage_above_max(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    rows[1]["intl_stage"] = "5"
    msg = only_problem(write_rows(tmp_path / "stage5.csv", rows), spec)
    assert "stage5.csv, row 3, column 'intl_stage': value 5 is out of range" in msg
    assert "whole numbers 0 to 4 (stage)" in msg


def test_percent_out_of_range(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    rows[2]["export_share"] = "130"
    rows[3]["own_product_share"] = "-5"
    rows[4]["core_group_share"] = "12.5"  # fractions of a percent are fine
    p = write_rows(tmp_path / "pct.csv", rows)
    problems = problems_of(p, spec)
    assert problems == [
        f"{p}, row 4, column 'export_share': value 130 is out of range; allowed: numbers 0 to 100 "
        "(percent), or empty for a missing answer",
        f"{p}, row 5, column 'own_product_share': value -5 is out of range; allowed: numbers 0 to 100 "
        "(percent), or empty for a missing answer",
    ]


def test_count_negative_or_not_whole_but_above_cap_is_fine(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    rows[0]["n_countries"] = "-1"
    rows[1]["n_customers"] = "3.5"
    rows[2]["n_customers"] = "250"  # above the cap 20: allowed
    p = write_rows(tmp_path / "count.csv", rows)
    problems = problems_of(p, spec)
    assert len(problems) == 2
    assert problems[0].startswith(f"{p}, row 2, column 'n_countries': value -1 is out of range; allowed: ")
    assert problems[1].startswith(f"{p}, row 3, column 'n_customers': value 3.5 is not a whole number; allowed: ")
    assert "whole numbers 0 or more (count; values above the cap 10 count as 10 when scaled)" in problems[0]
    assert "or empty for a missing answer" in problems[1]


@pytest.fixture(scope="module")
def binary_spec(spec):
    text = spec.text + (
        '\n[[items]]\nname = "exports_directly"\nconstruct = "doi"\nsubdimension = "stage"\nscale = "binary"\n'
        '\n[[items]]\nname = "capacity_use"\nconstruct = "independence"\nsubdimension = "diversity"\n'
        'scale = "continuous"\nmin = 0\nmax = 1.5\n'
    )
    return parse_spec(text, source="binary.toml")


def test_binary_not_zero_or_one(binary_spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    for k, r in enumerate(rows):
        r["exports_directly"] = str(k % 2)
        r["capacity_use"] = "0.8"
    rows[3]["exports_directly"] = "2"
    rows[4]["exports_directly"] = "0.5"
    rows[5]["capacity_use"] = "1.7"  # continuous: the declared range only sets the scaling
    rows[6]["capacity_use"] = "inf"
    p = write_rows(tmp_path / "bin.csv", rows)
    problems = problems_of(p, binary_spec)
    assert problems == [
        f"{p}, row 5, column 'exports_directly': value 2 is out of range; allowed: 0 or 1 (binary), "
        "or empty for a missing answer",
        f"{p}, row 6, column 'exports_directly': value 0.5 is out of range; allowed: 0 or 1 (binary), "
        "or empty for a missing answer",
        f"{p}, row 8, column 'capacity_use': value inf is not a finite number; allowed: any finite number "
        "(continuous; scaled on 0 to 1.5), or empty for a missing answer",
    ]
    rows[3]["exports_directly"] = rows[4]["exports_directly"] = "1"
    rows[6]["capacity_use"] = "1.5"
    s = load_survey(write_rows(tmp_path / "bin_ok.csv", rows), binary_spec)
    assert s.items["exports_directly"].sum() > 0


def test_non_numeric_values_in_item_outcome_and_extra_columns(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    rows[0]["export_share"] = "abc"
    rows[1]["outcome"] = "n/a"
    rows[2]["employees"] = "1,200"
    rows[3]["rnd_capability"] = "NA"
    p = write_rows(tmp_path / "text.csv", rows)
    problems = problems_of(p, spec)
    assert problems == [
        f"{p}, row 2, column 'export_share': value 'abc' is not a number; allowed: numbers 0 to 100 "
        "(percent), or empty for a missing answer",
        f"{p}, row 3, column 'outcome': value 'n/a' is not a number; allowed: any number (outcome), "
        "or empty when unknown",
        f"{p}, row 4, column 'employees': value '1,200' is not a number; allowed: any number "
        "(extra column 'employees'), or empty when unknown",
        f"{p}, row 5, column 'rnd_capability': value 'NA' is not a number; allowed: whole numbers 1 to 5 "
        "(likert), or empty for a missing answer",
    ]


def test_infinite_values_are_rejected(spec):
    f = load_survey(BUNDLED, spec).to_frame()
    f.loc[0, "outcome"] = np.inf
    f.loc[1, "export_share"] = -np.inf
    problems = validate_frame(f, spec)
    assert problems[0].startswith("<frame>, row 2, column 'outcome': value inf is not a finite number; allowed:")
    assert problems[1].startswith("<frame>, row 3, column 'export_share': value -inf is not a finite number")


def test_missing_required_columns(spec, tmp_path, bundled_rows):
    cols = [c for c in bundled_rows[0] if c not in ("firm_id", "industry", "mgmt_intl_plan")]
    p = write_rows(tmp_path / "cols.csv", bundled_rows, cols)
    problems = problems_of(p, spec)
    assert len(problems) == 3
    for col, what in [("firm_id", "id"), ("industry", "group"), ("mgmt_intl_plan", "item")]:
        msg = next(m for m in problems if f"'{col}'" in m.split(":")[0])
        assert msg.startswith(f"{p}, row 1 (header), column '{col}': required {what} column is missing; allowed: ")
        assert "firm_id, industry, intl_stage" in msg  # lists the required columns
        assert "(optional: outcome, employees)" in msg


def test_outcome_and_extra_columns_are_optional(spec, tmp_path, bundled_rows):
    cols = [c for c in bundled_rows[0] if c not in ("outcome", "employees")]
    s = load_survey(write_rows(tmp_path / "min.csv", bundled_rows, cols), spec)
    assert list(s.firms.columns) == ["industry"]
    assert list(s.to_frame().columns[:2]) == ["firm_id", "industry"]


def test_other_columns_are_ignored_and_a_missing_one_gets_a_hint(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    for r in rows:
        r["export_shares"] = "1"
        r["comment"] = "some text, not a number"
    p = write_rows(tmp_path / "other.csv", rows)
    s = load_survey(p, spec)
    assert s.ignored == ("export_shares", "comment")
    assert s.data_hash == load_survey(BUNDLED, spec).data_hash  # ignored columns change nothing
    for r in rows:
        r["export_shares"] = r.pop("export_share")
    p = write_rows(tmp_path / "renamed.csv", rows)
    problems = problems_of(p, spec)
    assert len(problems) == 1
    assert problems[0].startswith(
        f"{p}, row 1 (header), column 'export_share': required item column is missing (did you mean "
        "'export_shares'?); allowed: a header naming firm_id, industry, intl_stage"
    )
    assert problems[0].endswith("(optional: outcome, employees); other columns are ignored")


def test_covariates_are_carried_through_as_read(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    for k, r in enumerate(rows):
        r["region"] = "north" if k % 2 else "south"
    p = write_rows(tmp_path / "cov.csv", rows)
    cov = parse_spec(spec.text.replace('[instrument]', '[instrument]\ncovariates = ["region"]', 1), "cov.toml")
    s = load_survey(p, cov)
    assert list(s.firms["region"][:2]) == ["south", "north"] and s.ignored == ()
    problems = problems_of(BUNDLED, cov)
    assert len(problems) == 1 and "column 'region': required covariate column is missing" in problems[0]


def test_firms_are_numbered_by_row_when_the_spec_names_no_id(spec):
    f = load_survey(BUNDLED, spec).to_frame().drop(columns="firm_id")
    light = parse_spec(spec.text.replace('id_column = "firm_id"\n', '', 1), "light.toml")
    assert not light.id_declared
    s = survey_from_frame(f, light)
    assert list(s.items.index[:3]) == ["1", "2", "3"]
    problems = validate_frame(f, spec, source="x.csv")  # hitachi.toml names its id column
    assert problems[0].startswith("x.csv, row 1 (header), column 'firm_id': required id column is missing")


def test_group_column_ignored_when_spec_has_none(spec, tmp_path):
    nogroup = parse_spec(spec.text.replace('group_column = "industry"', 'group_column = ""'), "nogroup.toml")
    s = load_survey(BUNDLED, spec)
    f = s.to_frame()
    assert validate_frame(f, nogroup, source="x.csv") == []
    assert survey_from_frame(f, nogroup).ignored == ("industry",)
    t = survey_from_frame(f.drop(columns="industry"), nogroup)
    assert t.groups is None and t.group_names == ()
    assert list(t.firms.columns) == ["outcome", "employees"]


def test_duplicate_and_unnamed_columns(spec, tmp_path, bundled_rows):
    text = BUNDLED.read_text(encoding="utf-8").splitlines()
    text[0] = text[0] + ",outcome,"
    text[1:] = [line + ",1,5" if k == 3 else line + ",," for k, line in enumerate(text[1:])]
    p = tmp_path / "dup.csv"
    p.write_text("\n".join(text) + "\n", encoding="utf-8")
    problems = problems_of(p, spec)
    assert problems == [
        f"{p}, row 1 (header), column 'outcome': the column appears 2 times (columns C, T); "
        "allowed: each column once",
        f"{p}, row 1 (header), column U (no name): the column has values (first in row 5) but no name "
        "in the header; allowed: a name for every column with values, one of " + ", ".join(
            ["firm_id", "industry", *spec.item_names, "outcome", "employees"]
        ),
    ]


def test_trailing_empty_columns_and_rows_are_ignored(spec, tmp_path):
    text = BUNDLED.read_text(encoding="utf-8").splitlines()
    p = tmp_path / "trailing.csv"
    p.write_text("\n".join(line + ",," for line in text) + "\n,,,\n\n", encoding="utf-8")
    assert load_survey(p, spec).data_hash == load_survey(BUNDLED, spec).data_hash


def test_duplicate_firm_id(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    rows[7]["firm_id"] = rows[2]["firm_id"]  # F03 again, in row 9
    p = write_rows(tmp_path / "dupid.csv", rows)
    assert only_problem(p, spec) == (
        f"{p}, row 9, column 'firm_id': firm id 'F03' is a duplicate of row 4; allowed: a unique, "
        "non-empty id for every firm"
    )


def test_firm_id_whitespace_does_not_hide_a_duplicate(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    rows[7]["firm_id"] = " F03 "
    assert "firm id 'F03' is a duplicate of row 4" in only_problem(write_rows(tmp_path / "ws.csv", rows), spec)


def test_empty_firm_id(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    rows[10]["firm_id"] = ""
    p = write_rows(tmp_path / "noid.csv", rows)
    assert only_problem(p, spec) == (
        f"{p}, row 12, column 'firm_id': empty firm id; allowed: a unique, non-empty id for every firm "
        "(text, e.g. 'F01')"
    )


def test_empty_industry(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    rows[4]["industry"] = "  "
    p = write_rows(tmp_path / "noind.csv", rows)
    assert only_problem(p, spec) == (
        f"{p}, row 6, column 'industry': empty industry; allowed: a non-empty industry name for every firm"
    )


def test_item_missing_for_every_firm(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    for r in rows:
        r["coord_trade_practice"] = ""
    p = write_rows(tmp_path / "allmissing.csv", rows)
    assert only_problem(p, spec) == (
        f"{p}, column 'coord_trade_practice' (rows 2 to 42): every answer is empty; allowed: whole numbers "
        "1 to 5 (likert), with at least one firm answering (drop the item from the spec if it was not asked)"
    )


def test_empty_cells_are_missing_answers(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    rows[0]["overseas_growth"] = ""
    rows[0]["export_share"] = "   "
    s = load_survey(write_rows(tmp_path / "gaps.csv", rows), spec)
    base = load_survey(BUNDLED, spec)
    assert np.isnan(s.items.loc["F01", "overseas_growth"]) and np.isnan(s.items.loc["F01", "export_share"])
    assert int(s.missing.sum()) == int(base.missing.sum()) + 2


def test_empty_file(spec, tmp_path):
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    msg = only_problem(p, spec)
    assert msg == f"{p}: the file is empty (0 bytes); expected a header row and one row per firm"


def test_header_but_no_rows(spec, tmp_path, bundled_rows):
    p = write_rows(tmp_path / "header.csv", [{c: "" for c in bundled_rows[0]}])  # header + one blank row
    assert only_problem(p, spec) == (
        f"{p}, row 2: the file has a header but no data rows; allowed: one row per firm below the header"
    )
    p2 = tmp_path / "header2.csv"
    p2.write_text(",".join(bundled_rows[0]) + "\n", encoding="utf-8")
    assert "has a header but no data rows" in only_problem(p2, spec)


def test_blank_rows_keep_spreadsheet_row_numbers(spec, tmp_path):
    lines = BUNDLED.read_text(encoding="utf-8").splitlines()
    lines.insert(3, "")  # blank line -> row 4 is empty, F03 moves to row 5
    lines.insert(4, ",,,")
    bad = lines[6].split(",")  # F04, now in row 7
    bad[7] = "9"  # overseas_growth
    lines[6] = ",".join(bad)
    p = tmp_path / "blank.csv"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    msg = only_problem(p, spec)
    assert msg.startswith(f"{p}, row 7, column 'overseas_growth': value 9 is out of range")
    lines[6] = lines[6].replace(",9,", ",2,", 1)
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert load_survey(p, spec).n_firms == 41


def test_excel_rows_and_columns(spec, tmp_path):
    import openpyxl

    frame = load_survey(BUNDLED, spec).to_frame()
    p = tmp_path / "book.xlsx"
    frame.to_excel(p, index=False)
    wb = openpyxl.load_workbook(p)
    ws = wb.active
    col = list(frame.columns).index("export_share") + 1
    ws.cell(row=10, column=col, value=130)
    ws.cell(row=11, column=col, value="lots")
    ws.cell(row=12, column=1).value = None  # empty firm id
    wb.save(p)
    problems = problems_of(p, spec)
    assert problems == [
        f"{p}, row 10, column 'export_share': value 130 is out of range; allowed: numbers 0 to 100 "
        "(percent), or empty for a missing answer",
        f"{p}, row 11, column 'export_share': value 'lots' is not a number; allowed: numbers 0 to 100 "
        "(percent), or empty for a missing answer",
        f"{p}, row 12, column 'firm_id': empty firm id; allowed: a unique, non-empty id for every firm "
        "(text, e.g. 'F01')",
    ]


def test_excel_sheet_choice(spec, tmp_path):
    frame = load_survey(BUNDLED, spec).to_frame()
    p = tmp_path / "sheets.xlsx"
    with pd.ExcelWriter(p) as xw:
        pd.DataFrame({"notes": ["cover sheet"]}).to_excel(xw, sheet_name="cover", index=False)
        frame.to_excel(xw, sheet_name="answers", index=False)
    assert load_survey(p, spec, sheet="answers").n_firms == 41
    assert load_survey(p, spec, sheet=1).n_firms == 41
    with pytest.raises(DataError, match="no sheet named 'x'; sheets: \\['cover', 'answers'\\]"):
        read_table(p, sheet="x")


def test_spss_case_numbers(spec, tmp_path):
    pyreadstat = pytest.importorskip("pyreadstat")
    f = load_survey(BUNDLED, spec).to_frame()
    f.loc[4, "rnd_capability"] = 6
    p = tmp_path / "bad.sav"
    pyreadstat.write_sav(f, p)
    assert only_problem(p, spec) == (
        f"{p}, case 5, column 'rnd_capability': value 6 is out of range; allowed: whole numbers 1 to 5 "
        "(likert), or empty for a missing answer"
    )


def test_all_problems_reported_and_listing_capped(spec, tmp_path, bundled_rows):
    rows = copy_rows(bundled_rows)
    for r in rows:
        r["overseas_growth"] = "6"
        r["mgmt_intl_plan"] = "0"
    rows[0]["firm_id"] = ""
    p = write_rows(tmp_path / "many.csv", rows)
    with pytest.raises(DataError) as exc:
        load_survey(p, spec)
    err = exc.value
    assert len(err.problems) == 2 * 41 + 1
    text = str(err)
    assert text.splitlines()[0] == f"invalid survey data {p}: 83 problems"
    assert text.count("\n  - ") == MAX_LISTED_PROBLEMS
    assert text.endswith(f"  ... and {83 - MAX_LISTED_PROBLEMS} more")
    # sorted by row, then by column position
    assert err.problems[0].startswith(f"{p}, row 2, column 'firm_id'")
    assert err.problems[1].startswith(f"{p}, row 2, column 'overseas_growth'")
    assert err.problems[2].startswith(f"{p}, row 2, column 'mgmt_intl_plan'")


def test_unknown_extension_and_old_excel(spec, tmp_path):
    p = tmp_path / "survey.json"
    p.write_text("{}", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        load_survey(p, spec)
    assert exc.value.problems == [
        f"{p}: unknown file type '.json'; allowed extensions: .csv, .xlsx, .xlsm, .sav, .zsav"
    ]
    with pytest.raises(DataError, match=r"\.xls\) cannot be read; .*save it as \.xlsx"):
        read_table(tmp_path / "old.xls")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "nope.csv")


def test_not_utf8_and_encoding_option(spec, tmp_path):
    text = BUNDLED.read_text(encoding="utf-8").replace("metal processing", "金属加工")
    p = tmp_path / "sjis.csv"
    p.write_bytes(text.encode("cp932"))
    with pytest.raises(DataError, match=r"not utf-8-sig text .*encoding='cp932'"):
        load_survey(p, spec)
    s = load_survey(p, spec, encoding="cp932")
    assert "金属加工" in s.group_names
    # a UTF-8 file with a BOM (Excel's 'CSV UTF-8') reads fine
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + BUNDLED.read_bytes())
    assert load_survey(bom, spec).data_hash == load_survey(BUNDLED, spec).data_hash
    assert load_survey(bom, spec, encoding="utf-8").data_hash == load_survey(BUNDLED, spec).data_hash


def test_semicolon_separator_hint(spec, tmp_path):
    p = tmp_path / "semi.csv"
    p.write_text(BUNDLED.read_text(encoding="utf-8").replace(",", ";"), encoding="utf-8")
    msg = only_problem(p, spec)
    assert msg.startswith(f"{p}, row 1 (header): the header ") and "semicolons as separator" in msg


def test_read_table_returns_raw_text_cells(tmp_path):
    p = tmp_path / "raw.csv"
    p.write_text("firm_id,x\n007,3\n\n008, \n", encoding="utf-8")
    t = read_table(p)
    assert list(t.columns) == ["firm_id", "x"]
    assert t["firm_id"].tolist()[0] == "007"
    assert len(t) == 3  # the blank line is kept, so position + 2 is the spreadsheet row


def test_data_error_is_value_error_and_pickles():
    err = DataError("f.csv", ["f.csv, row 2, column 'x': bad"])
    assert isinstance(err, ValueError)
    assert str(err) == "invalid survey data f.csv: 1 problem\n  - f.csv, row 2, column 'x': bad"
    back = pickle.loads(pickle.dumps(err))
    assert (back.source, back.problems, str(back)) == (err.source, err.problems, str(err))


def test_survey_pickles(spec):
    s = load_survey(BUNDLED, spec)
    back = pickle.loads(pickle.dumps(s))
    assert back.data_hash == s.data_hash and back.spec.hash == s.spec.hash


def test_header_case_typo_gets_a_hint(spec):
    f = load_survey(BUNDLED, spec).to_frame().rename(columns={"firm_id": "Firm_ID"})
    problems = validate_frame(f, spec, source="c.csv")
    assert problems[0].startswith("c.csv, row 1 (header), column 'firm_id': required id column is missing "
                                  "(did you mean 'Firm_ID'?)")


def test_numeric_frames_take_the_fast_path(spec):
    # a simulation-style frame: numeric dtypes, NaN for missing
    s = load_survey(BUNDLED, spec)
    f = s.to_frame()
    assert all(f[c].dtype == np.float64 for c in spec.item_names)
    big = pd.concat([f] * 25, ignore_index=True)
    big["firm_id"] = [f"S{k:05d}" for k in range(len(big))]
    t = survey_from_frame(big, spec)
    assert t.n_firms == 41 * 25
    big.loc[500, "intl_stage"] = 4.5
    assert validate_frame(big, spec) == [
        "<frame>, row 502, column 'intl_stage': value 4.5 is out of range; allowed: whole numbers 0 to 4 "
        "(stage), or empty for a missing answer"
    ]


def test_prior_with_another_distribution_drops_the_default_parameters():
    """A prior table naming another family keeps none of the default's parameters (a
    HalfNormal loading must not inherit the LogNormal's mu); the same family merges."""
    from smeintl.spec import DEFAULT_PRIORS

    base = load_spec(BUNDLE_DIR / "hitachi.toml")
    text = base.text.replace('loading = { dist = "LogNormal", mu = 0.0, sigma = 0.5 }',
                             'loading = { dist = "HalfNormal", sigma = 2.0 }\nloading_count = { sigma = 0.25 }')
    spec = parse_spec(text, source="p.toml")
    assert spec.priors["loading"] == {"dist": "HalfNormal", "sigma": 2.0}
    assert spec.priors["loading_count"] == {**DEFAULT_PRIORS["loading_count"], "sigma": 0.25}
