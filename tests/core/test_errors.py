"""core.errors: the boundary of every entry point; a user's error is one line and exit code 2."""

import subprocess
import sys

import pytest
from conftest import REPO

from scaling_sweep.core.errors import UserError, entry_point


@entry_point("prog")
def main(error: Exception | None = None) -> int:
    print("working")
    if error:
        raise error
    return 0


def test_a_user_error_is_one_line_and_exit_code_2(capsys):
    assert main(UserError("data.path='x' matches no files")) == 2
    captured = capsys.readouterr()
    assert captured.err == "prog: error: data.path='x' matches no files\n"
    assert main() == 0


def test_a_programming_error_keeps_its_traceback():
    with pytest.raises(ValueError, match="a bug"):
        main(ValueError("a bug"))


@pytest.mark.slow
def test_output_piped_into_head_ends_quietly():
    code = ("from scaling_sweep.core.errors import entry_point\n"
            "@entry_point('prog')\n"
            "def main():\n"
            "    for i in range(200_000):\n"
            "        print(i)\n"
            "    return 0\n"
            "raise SystemExit(main())\n")
    proc = subprocess.run(f"{sys.executable} -c \"{code}\" | head -1", shell=True, cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout == "0\n" and proc.stderr == ""
