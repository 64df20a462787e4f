"""A sensor's sender as a process of its own, for the kill -9 test: sends what the store at
argv[1] holds to the Asgard at argv[2] in batches of argv[3], exits 0 once drained."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from asgard_support import link_for

from heimdal_tui.store import Store


def main() -> int:
    data_dir, url, batch = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    with Store.open(data_dir) as store:
        link = link_for(url, store, batch_size=batch)
        link.start()
        drained = link.wait_drained(120)
        link.stop(5)
    return 0 if drained else 1


if __name__ == "__main__":
    raise SystemExit(main())
