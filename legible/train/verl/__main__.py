"""``python -m legible.train.verl prepare ...`` (``legible.train.verl.main``)."""

import sys

from legible.train.verl._cli import main

sys.exit(main())
