"""`python -m reports ...` (or `python -m genrec_bench.reports ...`): see reports/cli.py."""

import sys

from genrec_bench.reports.cli import main

if __name__ == "__main__":
    sys.exit(main())
