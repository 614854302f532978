"""``python -m imgfilt``: the imgfilt command."""
import sys

from .cli import main

sys.exit(main())
