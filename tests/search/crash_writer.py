"""A child process for test_crash.py and test_vector_file_crash.py: streams upserts and
deletes into an index and prints one line per acknowledged call ("ACK <first> <last>" or
"DEL <key>"; "WRITING <first> <last>" before an upsert starts and "DELETING <key>" before a
delete starts) until it is killed (or kills itself at a test-only crash point).

    python -m tests.search.crash_writer <data dir or postgresql:// URL> <seed> <first key>

Keys are consecutive integers from <first key>, so no key is ever written twice.
"""

from __future__ import annotations

import sys

import numpy as np

from tests.search.backends import open_indexes
from tests.search.helpers import BINDING, vectors_for


def main() -> None:
    place, seed, next_key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = np.random.default_rng(seed)
    ix = open_indexes(place).get("ix", BINDING, create=True)
    first = next_key
    print("READY", flush=True)
    while True:
        size = int(rng.integers(1, 16))
        keys = [str(i) for i in range(next_key, next_key + size)]
        print(f"WRITING {keys[0]} {keys[-1]}", flush=True)  # in flight: it may or may not survive a kill
        ix.upsert(keys, vectors_for(keys), [{"n": int(k)} for k in keys])
        print(f"ACK {keys[0]} {keys[-1]}", flush=True)
        next_key += size
        if rng.random() < 0.2:
            victim = str(int(rng.integers(first, next_key)))
            print(f"DELETING {victim}", flush=True)  # in flight: it may or may not survive a kill
            if ix.delete([victim])[0]:
                print(f"DEL {victim}", flush=True)
        if rng.random() < 0.05 and hasattr(ix.store, "checkpoint"):
            ix.store.checkpoint()  # so kills also land while the WAL is folded into the database


if __name__ == "__main__":
    main()
