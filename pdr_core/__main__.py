"""`python -m pdr_core`: the command line, which lives in `pdr_core.cli`."""

import sys

from pdr_core.heap import pause_collection

pause_collection()  # before the imports; the command ends it once its endpoint's SDK is in

from pdr_core.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
