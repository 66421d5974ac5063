"""`python -m scaling_sweep.sweep [NAME ...] [--list]`: see scaling_sweep.training.sweep."""

import sys

from scaling_sweep.training.sweep import main

if __name__ == "__main__":
    sys.exit(main())
