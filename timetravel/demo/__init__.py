"""The demo: a simulated streaming service whose facts timetravel snapshots."""
