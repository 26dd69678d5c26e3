"""Write the Zipf 0.9 oracleGeneral trace the replay rows of README.md use.

30 000 requests over 16 384 one-page objects (seeded), 500 requests per second:

    python benchmarks/make_zipf_trace.py /tmp/zipf30k.oracleGeneral
    mglru replay /tmp/zipf30k.oracleGeneral --memory 32M --config v6.10 --compare lru,clock
"""

from __future__ import annotations

import sys

import numpy as np

from mglru.workload.generators import zipf
from mglru.workload.traces import write_oracle_general


def main(path: str, n: int = 30_000, objects: int = 16_384) -> None:
    """Write the trace to `path`."""
    write_oracle_general(path, np.arange(n) // 500, zipf(objects, n, seed=2) + 1,
                         np.full(n, 4096))


if __name__ == "__main__":
    main(sys.argv[1])
