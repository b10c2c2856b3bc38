"""``python -m milvus_backup_lib``: the command line (see :mod:`milvus_backup_lib.cli`)."""

import sys

from milvus_backup_lib.cli import main

if __name__ == "__main__":
    sys.exit(main())
