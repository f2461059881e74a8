import sys

from lib.jobs.cli import main

sys.exit(main())
