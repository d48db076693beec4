"""E2B's volumes through the sync SDK: Warren's team volumes. A file one
sandbox writes into a volume is read by the next sandbox that mounts it; a
volume a live sandbox mounts is not deleted."""

import pytest
from e2b import Sandbox, Volume, VolumeException

from conftest import TEMPLATE


def test_a_volume_outlives_the_sandbox_that_wrote_it(run_id):
    vol = Volume.create(f"sdk-{run_id}")
    try:
        assert vol.name == f"sdk-{run_id}"
        assert vol.volume_id in [v.volume_id for v in Volume.list()]
        assert Volume.get_info(vol.volume_id).name == vol.name

        a = Sandbox.create(
            TEMPLATE,
            timeout=60,
            metadata={"run": run_id, "case": "volumes"},
            volume_mounts={"/data": vol},
        )
        try:
            a.commands.run("echo from-a > /data/note")
            with pytest.raises(VolumeException):
                Volume.destroy(vol.volume_id)
        finally:
            a.kill()

        b = Sandbox.create(
            TEMPLATE,
            timeout=60,
            metadata={"run": run_id, "case": "volumes"},
            volume_mounts={"/mnt/shared": vol.name},
        )
        try:
            assert b.commands.run("cat /mnt/shared/note").stdout == "from-a\n"
        finally:
            b.kill()
    finally:
        assert Volume.destroy(vol.volume_id)
    assert not Volume.destroy(vol.volume_id)
