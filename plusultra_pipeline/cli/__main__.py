"""``python -m plusultra_pipeline.cli``: the ``plusultra`` command of this checkout."""

import sys

from plusultra_pipeline.cli import main

sys.exit(main())
