"""DRP ``unpack``: file names with ``..``, absolute names and symlinks cannot escape
their directory, on the provider side (``write_files``, what a provider's ``unpack``
returning its assets goes through) and on the server side (``check_tree`` around the
``unpack DIR`` a host runs), each refused with :class:`PathEscapeError`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from plugwire.core.errors import PluginExitedError
from plugwire.http.drp import PathEscapeError, ProviderCommand, check_tree, write_files

pytestmark = [pytest.mark.drp, pytest.mark.anyio]

PROVIDER = Path(__file__).resolve().parent / "providers" / "drp_unpacker.py"


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    target, outside = tmp_path / "target", tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    return target, outside


def _outside_untouched(outside: Path, *, allowed: tuple[str, ...] = ()) -> None:
    assert sorted(p.name for p in outside.iterdir() if p.name not in allowed) == []


# -- provider side: write_files ----------------------------------------------------


@pytest.mark.parametrize("name", ["../escape", "a/../../escape", "a/b/../../../escape", ".."])
def test_dotdot_names_are_refused(dirs: tuple[Path, Path], name: str) -> None:
    target, outside = dirs
    with pytest.raises(PathEscapeError) as info:
        write_files(target, {"fine.txt": "ok", name: "x"}, peer="unpacker")
    assert "'..'" in str(info.value) and info.value.peer == "unpacker"
    assert info.value.step == "unpack"
    # Checked before anything is written: not even the good name.
    assert list(target.iterdir()) == []
    _outside_untouched(outside)


@pytest.mark.parametrize("kind", ["absolute", "absolute-into-target"])
def test_absolute_names_are_refused(dirs: tuple[Path, Path], kind: str) -> None:
    target, outside = dirs
    name = str(outside / "abs") if kind == "absolute" else str(target / "abs")
    with pytest.raises(PathEscapeError, match="is absolute"):
        write_files(target, {name: "x"})
    assert list(target.iterdir()) == []
    _outside_untouched(outside)


def test_existing_symlink_in_target_is_not_followed(dirs: tuple[Path, Path]) -> None:
    target, outside = dirs
    victim = outside / "victim"
    victim.write_text("keep")
    (target / "asset.txt").symlink_to(victim)
    with pytest.raises(PathEscapeError, match="symlink") as info:
        write_files(target, {"asset.txt": "overwritten"})
    assert info.value.seen and "ELOOP" not in info.value.seen
    assert victim.read_text() == "keep"


def test_name_resolving_through_a_symlink_is_refused(dirs: tuple[Path, Path]) -> None:
    target, outside = dirs
    (target / "sub").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathEscapeError, match="symlink"):
        write_files(target, {"sub/file.txt": "x"})
    with pytest.raises(PathEscapeError, match="symlink"):
        write_files(target, {"sub/deeper/file.txt": "x"})
    _outside_untouched(outside)


def test_plain_names_are_written(dirs: tuple[Path, Path]) -> None:
    target, outside = dirs
    paths = write_files(target, {"a.txt": "A", "./d/e/f.bin": b"\x00\x01", "d//g.txt": "G"})
    assert [p.relative_to(target).as_posix() for p in paths] == ["a.txt", "d/e/f.bin", "d/g.txt"]
    assert (target / "d" / "e" / "f.bin").read_bytes() == b"\x00\x01"
    check_tree(target)
    _outside_untouched(outside)


# -- server side: check_tree ---------------------------------------------------------


def test_check_tree_refuses_links_leaving(dirs: tuple[Path, Path]) -> None:
    target, _ = dirs
    (target / "d").mkdir()
    (target / "d" / "inner").symlink_to("../ok.txt")  # stays inside: fine
    (target / "ok.txt").write_text("ok")
    check_tree(target)
    (target / "d" / "up").symlink_to("../../outside")
    with pytest.raises(PathEscapeError, match="d/up is a symlink leaving") as info:
        check_tree(target, peer="p")
    assert info.value.seen == "d/up -> ../../outside"
    os.unlink(target / "d" / "up")
    (target / "abs").symlink_to(target / "ok.txt")  # absolute: leaves when served elsewhere
    with pytest.raises(PathEscapeError, match="abs is a symlink leaving"):
        check_tree(target)


# -- through a real provider process ------------------------------------------------


def _command(outside: Path, mode: str, **extra: str) -> ProviderCommand:
    env = {"UNPACK_MODE": mode, "UNPACK_OUTSIDE": str(outside), **extra}
    return ProviderCommand.build([sys.executable, str(PROVIDER)], name="unpacker", env=env)


async def test_provider_writes_returned_assets(dirs: tuple[Path, Path]) -> None:
    target, outside = dirs
    await _command(outside, "").unpack(target, timeout=30)
    assert (target / "assets" / "inner.txt").read_text() == "inner"


@pytest.mark.parametrize(
    "names",
    ["../escape", "/tmp/plugwire-drp-escape", "assets/../../escape"],
    ids=["dotdot", "absolute", "nested-dotdot"],
)
async def test_provider_refuses_escaping_names(dirs: tuple[Path, Path], names: str) -> None:
    target, outside = dirs
    with pytest.raises(PluginExitedError) as info:
        await _command(outside, "names", UNPACK_NAMES=names).unpack(target, timeout=30)
    assert "file name" in "\n".join(info.value.stderr_tail) and info.value.step == "unpack"
    assert list(target.iterdir()) == []
    assert "plugwire-drp-escape" not in os.listdir("/tmp")
    assert not (target.parent / "escape").exists()


async def test_provider_does_not_follow_a_planted_symlink(dirs: tuple[Path, Path]) -> None:
    target, outside = dirs
    victim = outside / "victim"
    victim.write_text("keep")
    (target / "ok.txt").symlink_to(victim)
    # The host refuses to run unpack into a directory with a link leaving it ...
    with pytest.raises(PathEscapeError) as info:
        await _command(outside, "").unpack(target, timeout=30)
    assert info.value.step == "unpack (before)" and info.value.peer == "unpacker"
    assert not (outside / "provider-ran").exists()
    # ... and a provider writing there anyway does not follow it.
    with pytest.raises(PluginExitedError) as exited:
        await ProviderCommand.run(
            _command(outside, "names", UNPACK_NAMES="x"), ["unpack", str(target)], "unpack", 30
        )
    assert "symlink" in "\n".join(exited.value.stderr_tail)
    assert victim.read_text() == "keep"


@pytest.mark.parametrize("mode", ["raw-symlink", "raw-through-symlink"])
async def test_host_refuses_a_provider_planting_links(dirs: tuple[Path, Path], mode: str) -> None:
    target, outside = dirs
    with pytest.raises(PathEscapeError) as info:
        await _command(outside, mode).unpack(target, timeout=30)
    assert info.value.peer == "unpacker" and info.value.step == "unpack"
    assert "symlink leaving" in str(info.value)
