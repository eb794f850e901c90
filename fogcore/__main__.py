"""`python -m fogcore` runs the `fogcore` command."""

import sys

from fogcore.cli import main

sys.exit(main())
