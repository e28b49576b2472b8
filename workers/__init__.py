"""Worker processes: one module per stage, started by `python -m workers <stage>`."""
