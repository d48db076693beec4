"""E2B's volumes through the sync SDK: Warren's team volumes. A file one
sandbox writes into a volume is read by the next sandbox that mounts it; a
volume a live sandbox mounts is not deleted. A volume's files are read and
written without a sandbox through the volume content API (its token, at
E2B_VOLUME_API_URL), and a sandbox mounting the volume sees them as its
user's; a link a sandbox plants there is never followed."""

import io

import pytest
from e2b import NotFoundException, Sandbox, Volume, VolumeException

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


def test_a_volumes_files_without_a_sandbox(run_id):
    vol = Volume.create(f"files-{run_id}")
    try:
        assert vol.token
        text = "written through the volume API\n"
        info = vol.write_file("/hello.txt", text)
        assert (info.name, info.type.value, info.path, info.size) == (
            "hello.txt",
            "file",
            "/hello.txt",
            len(text),
        )
        assert (info.uid, info.gid, info.mode) == (1000, 1000, 0o644)
        assert vol.read_file("/hello.txt") == text
        assert vol.read_file("hello.txt", format="bytes") == text.encode()
        assert b"".join(vol.read_file("/hello.txt", format="stream")) == text.encode()
        with pytest.raises(VolumeException):
            vol.write_file("/hello.txt", "again", force=False)

        made = vol.make_dir("/sub/deeper", force=True)
        assert (made.type.value, made.path) == ("directory", "/sub/deeper")
        with pytest.raises(VolumeException):
            vol.make_dir("/sub", force=False)
        data = bytes(range(256)) * 4000
        vol.write_file("/sub/deeper/data.bin", io.BytesIO(data), mode=0o600)
        assert vol.read_file("/sub/deeper/data.bin", format="bytes") == data
        assert sorted(e.name for e in vol.list("/")) == ["hello.txt", "sub"]
        deep = [e.path for e in vol.list("/", depth=3)]
        assert "/sub/deeper/data.bin" in deep, deep
        assert vol.get_info("/sub/deeper/data.bin").size == len(data)
        assert vol.exists("/hello.txt") and not vol.exists("/nope")
        assert vol.update_metadata("/hello.txt", mode=0o640).mode == 0o640
        with pytest.raises(NotFoundException):
            vol.read_file("/nope")
        with pytest.raises(VolumeException):
            vol.read_file("/../etc/passwd")
        # Connecting hands out a token of its own.
        assert Volume.connect(vol.volume_id).read_file("/hello.txt") == text

        s = Sandbox.create(
            TEMPLATE,
            timeout=60,
            metadata={"run": run_id, "case": "volume-files"},
            volume_mounts={"/data": vol},
        )
        try:
            # What the API wrote is the sandbox user's.
            assert s.commands.run("cat /data/hello.txt", user="user").stdout == text
            owner = s.commands.run("stat -c %u:%g /data/sub/deeper/data.bin").stdout
            assert owner.strip() == "1000:1000"
            s.commands.run("echo from-the-sandbox > /data/sub/note", user="user")
            assert vol.read_file("/sub/note") == "from-the-sandbox\n"
            # A link planted inside is described, never followed.
            s.commands.run("ln -s /etc /data/etc-link", user="user")
            assert vol.get_info("/etc-link").type.value == "symlink"
            with pytest.raises(VolumeException):
                vol.read_file("/etc-link/passwd")
        finally:
            s.kill()

        vol.remove("/sub")
        assert not vol.exists("/sub")
        with pytest.raises(NotFoundException):
            vol.remove("/sub")
    finally:
        assert Volume.destroy(vol.volume_id)
