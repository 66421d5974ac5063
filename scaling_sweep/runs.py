"""`python -m scaling_sweep.runs runs/<sweep>`: see scaling_sweep.analysis.runs."""

import sys

from scaling_sweep.analysis.runs import main

if __name__ == "__main__":
    sys.exit(main())
