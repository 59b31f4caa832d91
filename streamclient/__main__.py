"""``python -m streamclient``: see `streamclient.cli`."""

import sys

from streamclient.cli import main

if __name__ == "__main__":
    sys.exit(main())
