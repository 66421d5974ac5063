"""`python -m scaling_sweep.analyze runs/<sweep>`: see scaling_sweep.analysis.analyze."""

import sys

from scaling_sweep.analysis.analyze import main

if __name__ == "__main__":
    sys.exit(main())
