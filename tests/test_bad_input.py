"""Bad input, refused with one clear message (issue 24): data files as real users export
them, the command line's numbers and paths, fit files, and interruptions.

Every test here failed before the behaviour it checks was built.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smeintl.cli import main
from smeintl.data import DataError, load_survey, read_table, validate_frame

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = ROOT / "src" / "smeintl" / "bundled"  # the bundled files (smeintl.resources)
DATA = BUNDLE_DIR / "hitachi_synthetic.csv"
SPEC = BUNDLE_DIR / "hitachi.toml"
TINY = BUNDLE_DIR / "tiny_instrument.toml"
PERCENT = ["export_share", "top_customer_share", "core_group_share", "own_product_share"]


@pytest.fixture(scope="module")
def spec():
    from smeintl import load_spec

    return load_spec(SPEC)


def bundled() -> pd.DataFrame:
    """The bundled file as text cells ('' for empty)."""
    return pd.read_csv(DATA, dtype=str, keep_default_na=False)


def write(frame: pd.DataFrame, path: Path, **kw) -> Path:
    frame.to_csv(path, index=False, **kw)
    return path


def problems(path, spec, **kw) -> list[str]:
    with pytest.raises(DataError) as e:
        load_survey(path, spec, **kw)
    return e.value.problems


def one_problem(path, spec, **kw) -> str:
    found = problems(path, spec, **kw)
    assert len(found) == 1, found
    return found[0]


def workbook(frame: pd.DataFrame, path: Path, *, sheets=("answers",), data_sheet="answers", cell=None):
    """An .xlsx with the frame on ``data_sheet`` (numbers as numbers); ``cell(ws, r, c, name, v)``
    may change a cell (r, c from 1, data rows from 2)."""
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name in sheets:
        ws = wb.create_sheet(name)
        if name != data_sheet:
            continue
        ws.append(list(frame.columns))
        for r, row in enumerate(frame.itertuples(index=False), start=2):
            for c, (col, v) in enumerate(zip(frame.columns, row), start=1):
                if v == "":
                    v = None
                elif col not in ("firm_id", "industry"):
                    v = float(v)
                ws.cell(row=r, column=c, value=v)
                if cell is not None:
                    cell(ws, r, c, col, v)
    wb.save(path)
    return path


# ---------------------------------------------------------------------------
# 1. percentages given as fractions
# ---------------------------------------------------------------------------
def as_fractions(frame: pd.DataFrame, columns) -> pd.DataFrame:
    out = frame.copy()
    for c in columns:
        out[c] = [repr(float(x) / 100) if x else "" for x in out[c]]
    return out


def test_percent_items_as_fractions_are_refused(spec, tmp_path):
    p = write(as_fractions(bundled(), PERCENT), tmp_path / "fractions.csv")
    msg = one_problem(p, spec)
    assert msg.startswith(f"{p}, column(s) 'export_share', 'top_customer_share', 'core_group_share', "
                          "'own_product_share': every answer is between 0 and 1")
    assert "look like fractions" in msg and "multiply these answers by 100" in msg and "max = 1" in msg
    # one item is enough, and it is the only one named
    p1 = write(as_fractions(bundled(), ["core_group_share"]), tmp_path / "one.csv")
    msg = one_problem(p1, spec)
    assert "column(s) 'core_group_share':" in msg and "export_share" not in msg.split(":")[0]


def test_percent_items_all_zero_or_declared_max_1_are_fine(spec, tmp_path):
    from smeintl import parse_spec

    f = bundled()
    f["export_share"] = ["0" if x else "" for x in f["export_share"]]  # nobody exports: not fractions
    assert load_survey(write(f, tmp_path / "zero.csv"), spec).n_firms == 41
    # fractions on purpose: max = 1 in the spec
    text = SPEC.read_text(encoding="utf-8")
    for name in PERCENT:
        text = text.replace(f'name = "{name}"\n', f'name = "{name}"\nmax = 1\n', 1)
    frac_spec = parse_spec(text, source="<fractions>")
    s = load_survey(write(as_fractions(bundled(), PERCENT), tmp_path / "fractions.csv"), frac_spec)
    assert s.items["export_share"].max() <= 1


def test_percent_fractions_in_excel_percent_cells_name_the_format(spec, tmp_path):
    def fmt(ws, r, c, col, v):
        if col in PERCENT and r > 1:
            ws.cell(row=r, column=c).number_format = "0%"

    p = workbook(as_fractions(bundled(), PERCENT), tmp_path / "pct.xlsx", cell=fmt)
    msg = one_problem(p, spec)
    assert "look like fractions" in msg and "formatted as percentages" in msg


# ---------------------------------------------------------------------------
# 2. Excel: formulas without saved values, sheets, zero-padded ids
# ---------------------------------------------------------------------------
def test_formula_cells_without_saved_values_are_refused(spec, tmp_path):
    def formula(ws, r, c, col, v):
        if col == "overseas_growth" and v is not None:
            ws.cell(row=r, column=c, value=f"={int(v)}+0")

    p = workbook(bundled(), tmp_path / "formulas.xlsx", cell=formula)
    msg = one_problem(p, spec)  # before: read as missing answers without a word
    n = int((bundled()["overseas_growth"] != "").sum())
    assert msg.startswith(f"{p}, sheet 'answers': {n} formula cell(s) have no saved value "
                          f"(column H ('overseas_growth'): {n} cells H2 to H42)")
    assert "open it in Excel" in msg and "CSV" in msg


def test_formula_cells_with_saved_values_read_as_their_values(spec, tmp_path):
    """A workbook saved by Excel keeps each formula's value: read like the plain numbers."""
    import zipfile

    p = workbook(bundled(), tmp_path / "plain.xlsx")
    # add a formula (with its cached value) to one cell by editing the sheet XML, as Excel saves it
    src = zipfile.ZipFile(p)
    out = tmp_path / "cached.xlsx"
    with zipfile.ZipFile(out, "w") as z:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                start = text.index('<c r="H2"')
                end = text.index("</c>", start) + 4
                value = text[start:end].split("<v>")[1].split("</v>")[0]
                text = text[:start] + f'<c r="H2"><f>1+{float(value) - 1}</f><v>{value}</v></c>' + text[end:]
                data = text.encode()
            z.writestr(item, data)
    assert load_survey(out, spec).data_hash == load_survey(DATA, spec).data_hash


def test_data_on_another_sheet_names_the_sheets(spec, tmp_path):
    p = workbook(bundled(), tmp_path / "sheets.xlsx", sheets=("cover", "answers"))
    msg = one_problem(p, spec)
    assert msg == (f"{p}, sheet 'cover': the sheet is empty (no header and no data); the workbook has sheets "
                   "'cover', 'answers'; choose the one with the data with --sheet NAME (Python: sheet='answers')")
    assert load_survey(p, spec, sheet="answers").n_firms == 41
    assert load_survey(p, spec, sheet="2").n_firms == 41  # --sheet 2: the second sheet
    # a first sheet with other content: the missing columns, and the other sheets named first
    import openpyxl

    wb = openpyxl.load_workbook(p)
    wb["cover"]["A1"] = "notes"
    wb.save(p)
    found = problems(p, spec)
    assert found[0] == (f"{p}: read sheet 'cover' of the workbook; its other sheets: 'answers'; if the data are "
                        "on another sheet, choose it with --sheet NAME (Python: sheet=NAME)")
    # the only sheet empty
    wb = openpyxl.Workbook()
    wb.active.title = "Sheet1"
    wb.save(tmp_path / "empty.xlsx")
    assert one_problem(tmp_path / "empty.xlsx", spec).endswith("it is the only sheet")


def test_zero_padded_excel_ids_keep_their_zeros(spec, tmp_path):
    f = bundled()
    f["firm_id"] = [str(k + 1) for k in range(len(f))]

    def padded(ws, r, c, col, v):
        if col == "firm_id" and r > 1:
            ws.cell(row=r, column=c, value=int(v)).number_format = "000" if r % 2 else '"F"000'

    p = workbook(f, tmp_path / "ids.xlsx", cell=padded)
    ids = list(load_survey(p, spec).firms.index)
    assert ids[:4] == ["F001", "002", "F003", "004"]


def test_sheet_option_on_the_command_line(spec, tmp_path, capsys):
    p = workbook(bundled(), tmp_path / "sheets.xlsx", sheets=("cover", "answers"))
    assert main(["validate", str(p)]) == 2
    assert "--sheet NAME" in capsys.readouterr().err
    assert main(["validate", str(p), "--sheet", "answers"]) == 0
    assert main(["indices", str(p), "--sheet", "2", "--out", str(tmp_path / "ind")]) == 0
    assert len(pd.read_csv(tmp_path / "ind" / "firms.csv")) == 41


# ---------------------------------------------------------------------------
# 3. encodings
# ---------------------------------------------------------------------------
def test_encoding_message_and_option(spec, tmp_path, capsys):
    text = DATA.read_text(encoding="utf-8").replace("metal processing", "金属加工")
    p = tmp_path / "sjis.csv"
    p.write_bytes(text.encode("cp932"))
    msg = one_problem(p, spec)
    row = next(k for k, line in enumerate(text.splitlines(), 1) if "金属加工" in line)
    assert msg.startswith(f"{p}: the file is not utf-8-sig text (undecodable byte 0x8b in row {row}); ")
    assert "--encoding cp932" in msg and "--encoding latin-1" in msg
    assert main(["validate", str(p)]) == 2
    assert "--encoding cp932" in capsys.readouterr().err
    assert main(["validate", str(p), "--encoding", "cp932"]) == 0
    assert "valid" in capsys.readouterr().out
    latin = tmp_path / "latin.csv"
    latin.write_bytes(DATA.read_text(encoding="utf-8").replace("metal processing", "métal").encode("latin-1"))
    assert main(["indices", str(latin), "--encoding", "latin-1", "--out", str(tmp_path / "ind")]) == 0
    capsys.readouterr()
    # an encoding Python does not know: refused before reading
    assert main(["validate", str(p), "--encoding", "klingon"]) == 2
    assert "unknown encoding 'klingon'" in capsys.readouterr().err


def test_utf16_and_binary_files_and_workbooks_named_csv(spec, tmp_path):
    u16 = tmp_path / "u16.csv"
    u16.write_bytes(DATA.read_text(encoding="utf-8").encode("utf-16"))
    assert "--encoding utf-16" in one_problem(u16, spec)
    assert load_survey(u16, spec, encoding="utf-16").n_firms == 41
    binary = tmp_path / "bin.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    assert "a binary file, not CSV text" in one_problem(binary, spec)
    xlsx_named_csv = tmp_path / "book.csv"
    xlsx_named_csv.write_bytes(workbook(bundled(), tmp_path / "b.xlsx").read_bytes())
    assert "rename it to .xlsx" in one_problem(xlsx_named_csv, spec)


# ---------------------------------------------------------------------------
# 4. European CSV, unquoted decimal commas
# ---------------------------------------------------------------------------
def test_european_csv_one_message(spec, tmp_path):
    f = bundled()
    f["outcome"] = f["outcome"].str.replace(".", ",", regex=False)
    p = write(f, tmp_path / "eu.csv", sep=";")
    msg = one_problem(p, spec)  # before: 19 unrelated problems
    assert msg.startswith(f"{p}, row 1 (header): the header ")
    assert "semicolons as separator and decimal commas (e.g. '7,4')" in msg
    assert ".xlsx" in msg
    tabs = write(bundled(), tmp_path / "tabs.csv", sep="\t")
    assert "tabs as separator" in one_problem(tabs, spec)


def test_unquoted_decimal_comma_one_message(spec, tmp_path):
    lines = DATA.read_text(encoding="utf-8").splitlines()
    k = lines[0].split(",").index("outcome")
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        cells[k] = cells[k].replace(".", ",")
        out.append(",".join(cells))
    p = tmp_path / "comma.csv"
    p.write_text("\n".join(out) + "\n", encoding="utf-8")
    shifted = sum("." in c for c in bundled()["outcome"])  # every row whose outcome has decimals
    msg = one_problem(p, spec)  # before: 108 shifted-column problems
    assert msg.startswith(f"{p}: {shifted} row(s) have more values than the header has columns (19): row ")
    assert "decimal commas ('3,5' for 3.5)" in msg
    # a comma in a text, not quoted: the same message
    f = bundled()
    raw = DATA.read_text(encoding="utf-8").replace(f["industry"][0], "metal, processing", 1)
    p2 = tmp_path / "text.csv"
    p2.write_text(raw, encoding="utf-8")
    assert "1 row(s) have more values than the header" in one_problem(p2, spec)
    # quoted, it is read
    f.loc[0, "industry"] = "metal, processing"
    assert load_survey(write(f, tmp_path / "quoted.csv"), spec).firms["industry"].iloc[0] == "metal, processing"


# ---------------------------------------------------------------------------
# 5. firm ids
# ---------------------------------------------------------------------------
def test_ids_that_are_one_number_written_differently(spec, tmp_path):
    f = bundled()
    f.loc[0, "firm_id"], f.loc[1, "firm_id"], f.loc[4, "firm_id"] = "7", "007", "7.0"
    p = write(f, tmp_path / "ids.csv")
    found = problems(p, spec)
    assert found == [
        f"{p}, row 3, column 'firm_id': firm id '007' is the same number as firm id '7' (row 2), written "
        "differently; allowed: a unique id for every firm (different firms: ids that differ as text and as "
        "numbers, e.g. 'F007' and 'F7'; the same firm: one row)",
        f"{p}, row 6, column 'firm_id': firm id '7.0' is the same number as firm id '7' (row 2), written "
        "differently; allowed: a unique id for every firm (different firms: ids that differ as text and as "
        "numbers, e.g. 'F007' and 'F7'; the same firm: one row)",
    ]
    # ids stay text: 007 alone keeps its zeros
    f.loc[0, "firm_id"], f.loc[4, "firm_id"] = "F1", "F5"
    assert load_survey(write(f, tmp_path / "ok.csv"), spec).firms.index[1] == "007"


# ---------------------------------------------------------------------------
# shared: a tiny instrument, 40 simulated firms, one short fit of them
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from smeintl import load_spec
    from smeintl.data import survey_to_csv
    from smeintl.simulate import simulate_survey

    sim = simulate_survey(load_spec(TINY), 40, n_groups=3, random_seed=1)
    return survey_to_csv(sim.survey, tmp_path_factory.mktemp("tiny") / "tiny.csv")


SHORT = ["--draws", "30", "--tune", "30", "--chains", "1", "--sampler", "pymc", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_fit(tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tinyfit") / "tiny-fit.nc"
    assert main(["fit", str(tiny_data), "--spec", str(TINY), "--out", str(out), *SHORT]) == 0
    return out


# ---------------------------------------------------------------------------
# 6. fit files
# ---------------------------------------------------------------------------
def test_fit_of_another_spec_is_blamed_on_the_fit(tiny_fit, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "cmp"
    assert main(["compare", str(tiny_fit), "--data", str(DATA), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"smeintl compare: error: {tiny_fit}: the fit was made with the instrument 'tiny'")
    assert "lacks its columns d_stage" in err and "refit" in err
    assert "unknown column" not in err and "Traceback" not in err
    assert not out.exists()


def test_damaged_fit_file_is_one_message(tiny_fit, tmp_path, capsys):
    """Random bytes written over the middle of a fit: never a traceback; damage the
    summary reads is 'not a readable fit file' (before: h5py's OSError, exit 1)."""
    good = tiny_fit.read_bytes()
    rng = np.random.default_rng(5)
    codes = []
    for k in range(12):
        bad = bytearray(good)
        at = int(len(good) * (k + 0.5) / 12)
        bad[at:at + 512] = rng.integers(0, 256, 512, dtype=np.uint8).tobytes()
        p = tmp_path / f"damaged{k}.nc"
        p.write_bytes(bytes(bad))
        codes.append(main(["summary", str(p)]))
        err = capsys.readouterr().err
        assert "Traceback" not in err
        if codes[-1] == 2:
            assert err.startswith(f"smeintl summary: error: {p}: not a readable fit file (")
    assert set(codes) <= {0, 2} and 2 in codes, codes
    # a folder given as the fit
    assert main(["summary", str(tmp_path)]) == 2
    assert "is a folder, not a fit file" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# 7. numbers on the command line
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["fit", "DATA", "--draws", "0"], "--draws must be at least 1, got 0"),
    (["fit", "DATA", "--chains", "0"], "--chains must be at least 1, got 0"),
    (["fit", "DATA", "--draws", "-5"], "--draws must be at least 1, got -5"),
    (["fit", "DATA", "--tune", "-1"], "--tune must be at least 0, got -1"),
    (["fit", "DATA", "--seed", "-1"], "--seed must be at least 0, got -1"),
    (["fit", "DATA", "--seed", str(2**32)], f"--seed must be at most {2**32 - 1}, got {2**32}"),
    (["run", "DATA", "--chains", "0"], "--chains must be at least 1, got 0"),
    (["run", "DATA", "--quick", "--draws", "0"], "--draws must be at least 1, got 0"),
    (["indices", "DATA", "--seed", "-3"], "--seed must be at least 0, got -3"),
    (["prior-check", "DATA", "--draws", "0"], "--draws must be at least 1, got 0"),
    (["summary", "FIT", "--prob", "0"], "--prob must be a probability strictly between 0 and 1 (e.g. 0.9), got 0.0"),
    (["summary", "FIT", "--prob", "1"], "--prob must be a probability strictly between 0 and 1"),
    (["summary", "FIT", "--prob", "1.5"], "--prob must be a probability strictly between 0 and 1"),
    (["summary", "FIT", "--prob", "-0.1"], "--prob must be a probability strictly between 0 and 1"),
    (["summary", "FIT", "--prob", "nan"], "--prob must be a probability strictly between 0 and 1"),
    (["compare", "FIT", "--prob", "0"], "--prob must be a probability strictly between 0 and 1"),
    (["robustness", "FIT", "--seed", "-1"], "--seed must be at least 0, got -1"),
])
def test_numbers_out_of_range_are_refused_before_any_work(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(DATA) if a == "DATA" else str(tmp_path / "no-fit.nc") if a == "FIT" else a for a in argv]
    if argv[0] in ("fit", "run", "indices", "compare", "robustness"):
        argv += ["--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"smeintl {argv[0]}: error: {message}\n" or (message in err and "Traceback" not in err)
    assert not out.exists()


def test_sampler_settings_in_python_are_checked(spec):
    import smeintl
    from smeintl.api import fit_settings

    with pytest.raises(smeintl.UserError, match=r"draws must be a whole number of at least 1, got 0 \(from --draws"):
        smeintl.analyze(draws=0, log=False)
    with pytest.raises(smeintl.UserError, match="chains must be a whole number of at least 1, got 0"):
        fit_settings(spec, chains=0)
    with pytest.raises(smeintl.UserError, match="tune must be a whole number of at least 0, got 2.5"):
        fit_settings(spec, tune=2.5)
    assert fit_settings(spec, tune=0) == {"draws": spec.sampler["draws"], "tune": 0, "chains": spec.sampler["chains"]}


# ---------------------------------------------------------------------------
# 8. paths
# ---------------------------------------------------------------------------
@pytest.fixture
def bad_specs(tmp_path):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)) * 8)
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    return {"binary": (binary, "not a text file"), "folder": (folder, "is a folder, not a spec file")}


@pytest.mark.parametrize("kind", ["binary", "folder"])
@pytest.mark.parametrize("command", ["validate", "indices", "fit", "run", "prior-check"])
def test_bad_spec_path_is_one_message(command, kind, bad_specs, tmp_path, capsys):
    path, message = bad_specs[kind]
    argv = [command, str(DATA), "--spec", str(path)]
    if command in ("indices", "fit", "run"):
        argv += ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"smeintl {command}: error: invalid spec {path}: 1 problem(s)") and message in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_data_path_that_is_a_folder(tmp_path, capsys):
    folder = tmp_path / "survey.csv"
    folder.mkdir()
    assert main(["validate", str(folder)]) == 2
    assert f"{folder}: is a folder, not a file" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["indices", "run"])
def test_output_path_that_is_a_file(command, tmp_path, capsys):
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    for force in ([], ["--force"]):
        assert main([command, str(DATA), "--out", str(target), *force]) == 2
        err = capsys.readouterr().err
        assert f"{target} is a file" in err and "Traceback" not in err
        assert target.read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


def test_fit_output_that_is_a_folder(tmp_path, capsys):
    assert main(["fit", str(DATA), "--out", str(tmp_path), "--force"]) == 2
    assert f"{tmp_path} is a folder; give a file name for --out" in capsys.readouterr().err


def test_run_force_replaces_only_report_folders(tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.docx").write_text("years of work\n")
    assert main(["run", str(DATA), "--out", str(notes), "--force", "--quick"]) == 2
    err = capsys.readouterr().err
    assert "is not a report folder of smeintl run" in err and "nothing was written or replaced" in err
    assert (notes / "thesis.docx").read_text() == "years of work\n"


@pytest.mark.parametrize("command", ["indices", "run"])
def test_unwritable_output_folder(command, tmp_path, monkeypatch, capsys):
    ro = tmp_path / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):  # root: permission bits do not bind; a read-only file system does
            real = os.access
            monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if Path(p) == ro and mode & os.W_OK
                                else real(p, mode, *a, **k))
        out = ro / "report"
        assert main([command, str(DATA), "--out", str(out)]) == 2  # before: a traceback, after the work
        err = capsys.readouterr().err
        assert f"{ro} is not writable (permission denied or a read-only file system)" in err
        assert "Traceback" not in err and list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


# ---------------------------------------------------------------------------
# 9. the exception boundary
# ---------------------------------------------------------------------------
def test_a_bug_is_a_traceback_that_says_so(monkeypatch, tmp_path, capsys):
    import smeintl.profiles

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(smeintl.profiles, "run_deterministic", broken)
    assert main(["indices", str(DATA), "--out", str(tmp_path / "ind")]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: boom" in err
    assert err.rstrip().endswith("this is a bug in smeintl; please report it (with the command and the traceback above)")


def test_os_errors_on_user_paths_are_user_errors(monkeypatch, tmp_path, capsys):
    import smeintl.cli

    def denied(path, obj):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(smeintl.cli, "_write_json", denied)
    out = tmp_path / "ind"
    assert main(["indices", str(DATA), "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"smeintl indices: error: {out / 'summary.json'}: Permission denied\n"


def test_broken_pipe_ends_quietly():
    p = subprocess.Popen([sys.executable, "-m", "smeintl.cli", "validate", str(DATA)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader is gone before the first line (as `| head -0`)
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141
    assert err == ""
    r = subprocess.run(f"'{sys.executable}' -m smeintl.cli validate '{DATA}' | head -1", shell=True, cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.stdout.startswith(f"{DATA}: valid") and r.stderr == ""


# ---------------------------------------------------------------------------
# 10. stale partial folders of killed runs
# ---------------------------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_partial_folders_are_removed(tmp_path):
    import socket

    from smeintl.api import PARTIAL_MARKER, clean_stale_partials

    def partial(name, pid=None, host=None, age=0.0):
        d = tmp_path / name
        d.mkdir()
        (d / "report.md").write_text("half\n")
        if pid is not None:
            (d / PARTIAL_MARKER).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname()}))
        if age:
            t = time.time() - age
            os.utime(d, (t, t))
        return d

    dead = partial(".rep.partial-1-abc", pid=_dead_pid())
    running = partial(".rep.partial-2-def", pid=os.getpid())
    elsewhere = partial(".rep.partial-3-ghi", pid=_dead_pid(), host="another-machine")
    legacy_old = partial(".old.partial-jkl", age=3600)
    legacy_new = partial(".new.partial-mno")
    (tmp_path / "kept").mkdir()
    replaced = partial(f".kept.old-{_dead_pid()}-123")
    lost = partial(f".lost.old-{_dead_pid()}-456")
    note = io.StringIO()
    removed = clean_stale_partials(tmp_path, stream=note)
    assert sorted(removed) == sorted([dead, legacy_old, replaced, lost])
    assert not dead.exists() and not legacy_old.exists() and not replaced.exists()
    assert running.exists() and elsewhere.exists() and legacy_new.exists()
    assert (tmp_path / "lost" / "report.md").exists()  # a report a killed --force run was replacing: restored
    assert f"note: removed {dead}, a partial report folder left by an interrupted run" in note.getvalue()


def test_next_run_into_the_same_parent_removes_them(tmp_path, capsys):
    import socket

    from smeintl.api import PARTIAL_MARKER

    stale = tmp_path / ".report.partial-9-xyz"
    stale.mkdir()
    (stale / PARTIAL_MARKER).write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    bad = tmp_path / "bad.csv"
    bad.write_text("firm_id\n1\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "report2")]) == 2  # refused after the check
    err = capsys.readouterr().err
    assert f"note: removed {stale}, a partial report folder left by an interrupted run" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


# ---------------------------------------------------------------------------
# 13. Cronbach's alpha with zero variance
# ---------------------------------------------------------------------------
def test_alpha_of_identical_answers_is_undefined_for_every_construct(spec):
    from smeintl.data import survey_from_frame
    from smeintl.indices import alpha_undefined, compute_indices
    from smeintl.profiles import run_deterministic

    f = bundled()
    for name in spec.item_names:
        f[name] = "3" if name == "proposal_capability" else f[name][0]
    survey = survey_from_frame(f, spec)
    alpha = compute_indices(survey).alpha
    assert alpha[["alpha_items", "alpha_subdimensions"]].isna().all().all(), alpha  # before: 0.0 for one
    assert (alpha["alpha_items_undefined"].str.startswith("zero variance")).all()
    assert alpha_undefined(np.ones((5, 3)) / 3).startswith("zero variance")
    assert alpha_undefined(np.array([[1.0, 2.0], [2.0, 2.5], [3.0, 5.0]])) is None
    text = run_deterministic(survey).summary_text()
    rows = [line.split() for line in text.splitlines() if line.strip().startswith(("doi ", "independence "))]
    rows = [r for r in rows if len(r) == 5]
    assert rows and all(r[1] == "-" and r[3] == "-" for r in rows), text


# ---------------------------------------------------------------------------
# 11. a Ctrl-C swallowed while the report is written
# ---------------------------------------------------------------------------
def _swallowed_sigint() -> None:
    """SIGINT delivered inside a garbage-collection callback, as happens while matplotlib
    draws: Python prints 'Exception ignored' and drops the KeyboardInterrupt."""
    import weakref

    class Thing:
        pass

    thing = Thing()
    ref = weakref.ref(thing, lambda r: signal.raise_signal(signal.SIGINT))  # noqa: F841
    del thing


def test_ctrl_c_swallowed_while_the_report_is_written(tiny_data, tmp_path, monkeypatch, capsys):
    import smeintl.report

    real = smeintl.report.write_report

    def writer(folder, **kw):
        real(folder, **kw)
        _swallowed_sigint()  # before: the run went on and completed the report

    monkeypatch.setattr(smeintl.report, "write_report", writer)
    out = tmp_path / "report"
    rc = main(["run", str(tiny_data), "--spec", str(TINY), "--out", str(out), "--no-robustness", *SHORT])
    assert rc == 130
    assert "smeintl run: interrupted" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no report, no partial folder


# ---------------------------------------------------------------------------
# 14. Ctrl-C (and SIGTERM) at several moments of `fit` and `run`, in a real process
# ---------------------------------------------------------------------------
def _interrupt(argv, *, after: str | None, delay: float, sig=signal.SIGINT, group=False, timeout=240, env=None):
    """Start ``smeintl ARGV``, wait for the stdout line containing ``after`` (None: the start),
    sleep ``delay`` s, send ``sig``; return (exit status, stdout, stderr, seen)."""
    import threading

    p = subprocess.Popen([sys.executable, "-u", "-m", "smeintl.cli", *argv], cwd=ROOT, text=True, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    out, err, seen = [], [], threading.Event()

    def read(stream, into, mark):
        for line in stream:
            into.append(line)
            if mark and mark in line:
                seen.set()

    threads = [threading.Thread(target=read, args=(p.stdout, out, after), daemon=True),
               threading.Thread(target=read, args=(p.stderr, err, None), daemon=True)]
    for t in threads:
        t.start()
    try:
        if after is None:
            seen.set()
        else:
            deadline = time.time() + timeout
            while not seen.wait(0.05) and p.poll() is None and time.time() < deadline:
                pass
        time.sleep(delay)
        if p.poll() is None:
            (os.killpg if group else os.kill)(p.pid, sig)
        rc = p.wait(timeout=timeout)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    for t in threads:
        t.join(timeout=10)
    return rc, "".join(out), "".join(err), seen.is_set()


def _assert_interrupted(rc, out, err, seen, folder: Path, command: str):
    assert seen, out + err
    assert rc == 130, (rc, out[-2000:], err[-3000:])
    assert f"smeintl {command}: interrupted" in err
    assert "Traceback" not in err and "Exception ignored" not in err, err[-3000:]
    assert [p.name for p in folder.iterdir() if p.name != "tiny.csv"] == []


@pytest.mark.parametrize("sampler, after, delay, sig, group", [
    ("auto", None, 1.5, signal.SIGINT, False),  # while importing
    ("auto", "fitting", 0.5, signal.SIGINT, True),  # compiling or starting to sample; the whole group
    ("pymc", "fitting", 4.0, signal.SIGINT, False),  # sampling (PyMC returns the draws so far)
    ("auto", "fitting", 4.0, signal.SIGTERM, False),  # sampling (nutpie returns the draws so far)
])
def test_fit_interrupted(tiny_data, tmp_path, sampler, after, delay, sig, group):
    data = tmp_path / "tiny.csv"
    data.write_bytes(tiny_data.read_bytes())
    argv = ["fit", str(data), "--spec", str(TINY), "--out", str(tmp_path / "fit.nc"), "--draws", "60000",
            "--tune", "1000", "--chains", "1", "--sampler", sampler, "--no-progress"]
    _assert_interrupted(*_interrupt(argv, after=after, delay=delay, sig=sig, group=group), tmp_path, "fit")


@pytest.mark.parametrize("after, delay", [
    ("[3/8] fit the measurement model ...", 1.0),  # compiling or sampling
    ("[7/8] robustness checks ...", 0.2),
    ("[8/8] write the report ...", 0.3),
])
def test_run_interrupted(tiny_data, tmp_path, after, delay):
    data = tmp_path / "tiny.csv"
    data.write_bytes(tiny_data.read_bytes())
    draws = "20000" if after.startswith("[3/8]") else "200"
    argv = ["run", str(data), "--spec", str(TINY), "--quick", "--out", str(tmp_path / "report"),
            "--draws", draws, "--tune", "200", "--chains", "1", "--sampler", "pymc", "--no-progress"]
    _assert_interrupted(*_interrupt(argv, after=after, delay=delay), tmp_path, "run")


def test_run_interrupted_while_the_refits_run_ahead(tiny_data, tmp_path, tmp_path_factory):
    """Ctrl-C during the fit, to the whole group as a terminal sends it, while the
    model-comparison refits run ahead in a second process: exit 130, no traceback from either
    process, and the second process's folder is gone (it is removed once that process ended)."""
    data = tmp_path / "tiny.csv"
    data.write_bytes(tiny_data.read_bytes())
    tmp = tmp_path_factory.mktemp("tmp")
    argv = ["run", str(data), "--spec", str(TINY), "--out", str(tmp_path / "report"), "--draws", "20000",
            "--tune", "200", "--chains", "1", "--no-progress"]
    res = _interrupt(argv, after="[3/8] fit the measurement model ...", delay=1.5, group=True,
                     env=dict(os.environ, TMPDIR=str(tmp)))
    _assert_interrupted(*res, tmp_path, "run")
    assert "the model-comparison refits run meanwhile in a second process" in res[1]
    assert [p.name for p in tmp.iterdir() if p.name.startswith("smeintl-refits-")] == []


def test_killed_run_leaves_a_partial_folder_the_next_run_removes(tiny_data, tmp_path, capsys):
    data = tmp_path / "tiny.csv"
    data.write_bytes(tiny_data.read_bytes())
    argv = ["run", str(data), "--spec", str(TINY), "--out", str(tmp_path / "report"), "--no-robustness", *SHORT]
    rc, out, err, seen = _interrupt(argv, after="[8/8] write the report ...", delay=0.3, sig=signal.SIGKILL)
    assert seen and rc == -signal.SIGKILL
    partial = [p for p in tmp_path.iterdir() if p.name.startswith(".report.partial-")]
    assert len(partial) == 1
    assert main(["run", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "report2")]) == 2
    assert f"note: removed {partial[0]}, a partial report folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.csv"]


def test_cleanup_errors_of_objects_an_interrupt_left_half_built_are_quiet(tmp_path):
    """An object whose construction a Ctrl-C cut short (an h5netcdf file, say) fails in its
    finalizer; once the interrupt is recorded that is the abandoned run's noise, not printed."""
    code = (
        "import os, signal, time\n"
        "from smeintl import errors\n"
        "from smeintl.exits import _collect_abandoned\n"
        "class Half:\n"
        "    def __del__(self):\n"
        "        raise AttributeError(\"'File' object has no attribute '_closed'\")\n"
        "def work():\n"
        "    half = Half()\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(5)\n"
        "with errors.interrupt_signals():\n"
        "    try:\n"
        "        work()\n"
        "    except KeyboardInterrupt as exc:\n"
        "        errors.stop_interrupting()\n"
        "        _collect_abandoned(exc)\n"
        "print('finished')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "finished" in r.stdout, r.stderr
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_interrupt_pending_while_the_signal_handling_is_taken_down(monkeypatch):
    """A repeated interrupt still pending when the command's signal handling is taken down
    ends nothing that had stopped: the command's own status stands, no KeyboardInterrupt
    escapes (which would kill the process by SIGINT instead of exit 130 or 0)."""
    from contextlib import contextmanager

    from smeintl import cli

    @contextmanager
    def late_interrupt():
        yield
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "interrupt_signals", late_interrupt)
    assert cli.main(["validate", str(DATA)]) == 0
