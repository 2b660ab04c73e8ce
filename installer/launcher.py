"""The bundle's entry point: the same ``ganstudio`` command as the wheel's console script."""
import multiprocessing
import sys

if __name__ == "__main__":
    # A frozen app re-runs this file for every spawned process (Windows, macOS): hand those to multiprocessing.
    multiprocessing.freeze_support()
    from ganstudio.cli import main

    sys.exit(main())
