"""`python -m shared.events tail <topic> ...`: see `shared.events.tail`."""

import sys

from shared.events.tail import main

sys.exit(main())
