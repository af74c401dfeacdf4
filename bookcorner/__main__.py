import sys

from bookcorner.cli import main

sys.exit(main())
