"""Run the workloads on dask (in the peers venv); see ../driver.py for the options."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import driver  # noqa: E402

if __name__ == "__main__":
    driver.main(["--system", "dask", *sys.argv[1:]])
