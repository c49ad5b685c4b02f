"""Data quality of each run: per-field statistics of its facts, and population estimates."""
