"""`python -m scaling_sweep.train [overrides]`: see scaling_sweep.training.train."""

from scaling_sweep.training.train import main

if __name__ == "__main__":
    main()
