"""`python -m fogcore` runs the `fogcore` command."""

import sys

try:
    from fogcore.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command is still being imported
    sys.exit(130)

sys.exit(main())
