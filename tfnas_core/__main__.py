import sys

from tfnas_core.cli.main import main

sys.exit(main())
