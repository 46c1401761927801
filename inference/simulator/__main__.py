"""`python -m inference.simulator`: serve the simulated backend in the foreground."""

import sys

from inference.simulator import main

sys.exit(main())
