"""`python -m pdr_core`: the command line, which lives in `pdr_core.cli`."""

import sys

from pdr_core.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
