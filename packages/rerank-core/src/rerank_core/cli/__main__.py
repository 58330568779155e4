import sys

from rerank_core.cli.main import main

sys.exit(main())
