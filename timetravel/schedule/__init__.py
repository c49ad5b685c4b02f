"""Unattended operation: run times from a cron expression, catch-up, one scheduler at a time."""
