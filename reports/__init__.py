"""Reports read result files only (never a backend): summary and pivot of a run, the history store, the gate
(compare, verdicts, exit codes) and the dashboard. `python -m reports --help` lists the commands."""
