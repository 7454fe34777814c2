"""Feature stages: one module per stage, each computed point-in-time as of a cutoff."""
