"""analyze --points: a CSV cell that is not a positive finite number is one line naming file, row and
column, and exit code 2 (no traceback, no numpy warning)."""

import warnings

import pytest

from scaling_sweep.analysis import analyze
from scaling_sweep.planning import plan

GOOD = ["1e6,2e10,3.1", "3e6,6e10,2.9", "1e7,2e11,2.7"]


@pytest.mark.parametrize("row,column,cell,says", [
    (3, "D", "many", "is not a number"),
    (2, "loss", "nan", "must be a positive finite number"),
    (4, "N", "-1e7", "must be a positive finite number"),
    (3, "N", "0", "must be a positive finite number"),
    (2, "D", "inf", "must be a positive finite number"),
    (4, "loss", "", "is not a number"),
])
def test_a_bad_cell_is_one_line_naming_file_row_and_column(tmp_path, capsys, row, column, cell, says):
    lines = [dict(zip(("N", "D", "loss"), line.split(","))) for line in GOOD]
    lines[row - 2][column] = cell  # row 1 is the header, as a spreadsheet numbers it
    table = tmp_path / "points.csv"
    table.write_text("N,D,loss\n" + "".join(f"{r['N']},{r['D']},{r['loss']}\n" for r in lines))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert analyze.main(["--points", str(table)]) == 2
    err = capsys.readouterr().err
    assert err == f"analyze: error: {table} row {row}, column {column}: {cell!r} {says}\n"


def test_a_missing_cell_of_a_short_row_is_named(tmp_path, capsys):
    table = tmp_path / "short.csv"
    table.write_text("N,C,loss\n1e6,2e10,3.1\n3e6,6e10\n")
    assert analyze.main(["--points", str(table)]) == 2
    assert capsys.readouterr().err == f"analyze: error: {table} row 3, column loss: '' is not a number\n"



def test_params_states_what_the_files_n_counts_and_the_planner_plans_in_it(tmp_path, capsys):
    table = tmp_path / "points.csv"  # 16 points of L = 1.7 + 400/N^0.34 + 400/D^0.28
    rows = [(N, D, 1.7 + 400 / N**0.34 + 400 / D**0.28) for N in (1e6, 1e7, 1e8, 1e9) for D in (1e8, 1e9, 1e10, 1e11)]
    table.write_text("N,D,loss\n" + "".join(f"{N:g},{D:g},{loss:.6f}\n" for N, D, loss in rows))
    assert analyze.main(["--points", str(table), "--params", "total", "--json"]) == 0
    fits = tmp_path / "fits.json"
    fits.write_text(capsys.readouterr().out)
    assert plan.read_fits(fits)["chinchilla"].params_convention == "total"


def test_a_points_file_whose_n_is_not_stated_says_so():
    setting = {"points_file": "points.csv", "tokenizer": None, "n_ctx": None, "points_params": None}
    units = analyze.Analysis("points", setting).units()
    assert "params" not in units and "not stated: analyze --params" in units["N"]
