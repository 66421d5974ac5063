"""`python -m scaling_sweep.plan --compute 1e21`: see scaling_sweep.planning.plan."""

import sys

from scaling_sweep.planning.plan import main

if __name__ == "__main__":
    sys.exit(main())
