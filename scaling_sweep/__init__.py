"""scaling-sweep: train a grid of GPTs, fit scaling laws, plan a compute budget."""
