"""analyze --points: a CSV cell that is not a positive finite number is one line naming file, row and
column, and exit code 2 (no traceback, no numpy warning)."""

import warnings

import pytest

from scaling_sweep.analysis import analyze

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
