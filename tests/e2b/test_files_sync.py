"""`files` through the sync SDK, in one shared sandbox."""

import os

import pytest
from e2b import FileType, InvalidArgumentException, SandboxException


def test_text_and_bytes_round_trip(sbx):
    sbx.files.write("/home/user/hello.txt", "héllo\n")
    assert sbx.files.read("/home/user/hello.txt") == "héllo\n"
    data = bytes(range(256)) * 4
    sbx.files.write("/home/user/blob.bin", data)
    assert bytes(sbx.files.read("/home/user/blob.bin", format="bytes")) == data
    # Gzip both ways.
    sbx.files.write("/home/user/z.txt", "zipped", gzip=True)
    assert sbx.files.read("/home/user/z.txt", gzip=True) == "zipped"
    assert sbx.commands.run("cat /home/user/z.txt").stdout == "zipped"


def test_ten_megabytes(sbx):
    data = os.urandom(10 * 1024 * 1024)
    sbx.files.write("/tmp/ten.bin", data)
    assert bytes(sbx.files.read("/tmp/ten.bin", format="bytes")) == data
    assert sbx.files.get_info("/tmp/ten.bin").size == len(data)


def test_dirs_list_exists_info_rename_remove(sbx):
    assert sbx.files.make_dir("/home/user/d/e")
    sbx.files.write("/home/user/d/e/f.txt", "f")
    sbx.files.write("/home/user/d/g.txt", "g")
    top = {e.name for e in sbx.files.list("/home/user/d")}
    assert top == {"e", "g.txt"}
    deep = {e.path for e in sbx.files.list("/home/user/d", depth=2)}
    assert "/home/user/d/e/f.txt" in deep
    info = sbx.files.get_info("/home/user/d/e")
    assert info.type == FileType.DIR and info.name == "e"
    assert sbx.files.exists("/home/user/d/g.txt")
    moved = sbx.files.rename("/home/user/d/g.txt", "/home/user/d/h.txt")
    assert moved.path == "/home/user/d/h.txt"
    assert not sbx.files.exists("/home/user/d/g.txt")
    sbx.files.remove("/home/user/d")
    assert not sbx.files.exists("/home/user/d")


def test_written_files_belong_to_the_user(sbx):
    sbx.files.write("/home/user/owned.txt", "x")
    assert sbx.commands.run("stat -c %U /home/user/owned.txt").stdout == "user\n"


def test_files_are_read_with_the_users_rights(sbx):
    with pytest.raises(SandboxException, match="ermission denied"):
        sbx.files.read("/etc/shadow")
    assert "root:" in sbx.files.read("/etc/shadow", user="root")
    with pytest.raises(InvalidArgumentException):
        sbx.files.read("/etc/hostname", user="../../x")


def test_signed_download_url(sbx):
    import urllib.request

    sbx.files.write("/home/user/signed.txt", "signed content")
    url = sbx.download_url("/home/user/signed.txt", use_signature_expiration=60)
    with urllib.request.urlopen(url) as r:
        assert r.read() == b"signed content"


def test_an_expired_signed_url_gets_envds_answer(sbx):
    import json
    import urllib.error
    import urllib.request

    sbx.files.write("/home/user/stale.txt", "stale")
    url = sbx.download_url("/home/user/stale.txt", use_signature_expiration=-10)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url)
    assert e.value.code == 401
    assert json.loads(e.value.read()) == {"code": 401, "message": "signature is already expired"}


def test_removing_a_missing_path_succeeds(sbx):
    sbx.files.remove("/home/user/never-there")
    sbx.files.remove("/home/user/never/there/either")


def test_symlink_target_is_the_absolute_path_it_leads_to(sbx):
    sbx.files.make_dir("/home/user/links")
    sbx.files.write("/home/user/links/real.txt", "real")
    sbx.commands.run("ln -s real.txt rel && ln -s rel chain", cwd="/home/user/links")
    for name in ("rel", "chain"):
        info = sbx.files.get_info(f"/home/user/links/{name}")
        assert info.symlink_target == "/home/user/links/real.txt"
    sbx.files.remove("/home/user/links")


def test_file_metadata_is_kept_listed_renamed_and_replaced(sbx):
    path = "/home/user/meta/notes.txt"
    info = sbx.files.write(path, "hello", metadata={"Author": "mish", "stage": "draft"})
    assert info.metadata == {"author": "mish", "stage": "draft"}
    assert sbx.files.get_info(path).metadata == {"author": "mish", "stage": "draft"}
    listed = {e.name: e.metadata for e in sbx.files.list("/home/user/meta")}
    assert listed == {"notes.txt": {"author": "mish", "stage": "draft"}}
    moved = sbx.files.rename(path, "/home/user/meta/final.txt")
    assert moved.metadata == {"author": "mish", "stage": "draft"}
    # An overwrite carries its own metadata only; none clears it.
    sbx.files.write("/home/user/meta/final.txt", "v2", metadata={"stage": "final"})
    assert sbx.files.get_info("/home/user/meta/final.txt").metadata == {"stage": "final"}
    sbx.files.write("/home/user/meta/final.txt", "v3")
    assert sbx.files.get_info("/home/user/meta/final.txt").metadata is None
    # Other attributes set inside the sandbox are not metadata.
    sbx.commands.run(
        "python3 -c \"import os; os.setxattr('/home/user/meta/final.txt', 'user.other', b'x');"
        " os.setxattr('/home/user/meta/final.txt', 'user.e2b.tool', b'set-inside')\""
    )
    assert sbx.files.get_info("/home/user/meta/final.txt").metadata == {"tool": "set-inside"}
