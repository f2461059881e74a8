import sys

from lib.process import prefer_small_pages

prefer_small_pages()  # before the first large arrays: see lib/process.py

from lib.jobs.cli import main  # noqa: E402

sys.exit(main())
