"""A full filesystem under an embedded index: the write answers 507 `insufficient_storage`
naming the place and the free space, nothing acknowledged is lost, the index keeps working,
and once space is freed the same call succeeds, without a restart.

Each case runs a child process in a mount namespace of its own (`unshare --mount`) on a
tmpfs of 4 MiB: the mount disappears with the process, so nothing is left mounted whatever
happens. Needs root and util-linux's unshare (skipped otherwise). With 8-d vectors the
database's log fills the disk first (SQLite's SQLITE_FULL); with 512-d ones, the vector file
(ENOSPC from pwrite).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare (a private tmpfs mount)"
)
SCRIPT = 'mount -t tmpfs -o size=4m tmpfs "$1" && exec "$2" -m tests.search.full_disk_child "$1" "$3"'


@pytest.mark.parametrize(("dim", "cause"), [(8, "database or disk is full"), (512, "No space left on device")])
def test_a_full_disk_answers_507_and_recovers(tmp_path, dim, cause):
    place = tmp_path / "small"
    place.mkdir()
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", SCRIPT, "sh", str(place), sys.executable, str(dim)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert (seen["status"], seen["code"]) == (507, "insufficient_storage")
    assert str(place) in seen["detail"] and "bytes free" in seen["detail"] and cause in seen["detail"]
    assert seen["acked"] > 50
    assert not any(place.iterdir())  # the tmpfs went with the namespace: nothing of it is left here
