"""Reports read the pytest-benchmark JSON only: summary table (more views build on reports.load)."""
