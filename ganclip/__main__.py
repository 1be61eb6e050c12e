import sys

from ganclip.cli import main

sys.exit(main())
