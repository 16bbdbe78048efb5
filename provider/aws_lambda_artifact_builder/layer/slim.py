"""Slim layers: the opt-in packaging options that leave out what a Lambda function never uses.

* ``strip_debug_symbols``: every ELF shared object is written as ``strip --strip-debug`` makes it
  (debug sections only: the symbols a dynamic loader needs stay). The strip of binutils (or LLVM's
  ``llvm-strip``) is found for the object's own machine (x86_64 or aarch64, read from its ELF header).
  When none can be found the packaging **fails** naming what to install: silently shipping unstripped
  objects on one machine and stripped ones on another would give one fingerprint two different zips.
  The same strip gives the same bytes on every run; different binutils releases may not.
  The stripped copy is shipped only if every loadable segment (``PT_LOAD``: flags, address, sizes,
  alignment and its bytes) is what it was: objects edited by ``patchelf`` (auditwheel's ``*.libs``,
  e.g. numpy's OpenBLAS) come out of strip with moved or truncated segments that the loader rejects
  ("ELF load command address/offset not page-aligned"), so those are shipped unstripped (and named).
* ``drop_tests``: files below a ``tests/`` folder of a distribution.
* ``drop_type_stubs``: ``*.pyi`` files (type checkers read them, the runtime never does).
* ``drop_docs``: ``doc/``/``docs/`` folders that are not Python packages (``botocore.docs`` is
  imported at run time, so a folder holding ``.py`` files stays), and ``*.md``/``*.rst`` files.

``*.dist-info`` folders are never touched (licences, metadata, the rewritten RECORD), and a
distribution's RECORD is rewritten from the files actually shipped, so ``pip`` and
``importlib.metadata`` see a consistent install.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LayerError
from .runner import SUBPROCESS, CommandRunner

if TYPE_CHECKING:  # pragma: no cover
    from .package import PackagingOptions

#: ELF ``e_machine`` values of the two Lambda architectures.
_ELF_MACHINES = {62: "x86_64", 183: "aarch64"}
_DOC_FOLDERS = frozenset({"doc", "docs"})
_DOC_SUFFIXES = (".md", ".rst")
_LICENCE_PREFIXES = ("license", "licence", "copying", "notice", "authors")


def _is_licence(name: str) -> bool:
    return name.lower().startswith(_LICENCE_PREFIXES)


def _package_folders(paths: Mapping[str, Path]) -> set[str]:
    """Folders (posix, below ``python/``) that hold a Python module: a ``docs`` among them is code."""
    return {rel.rsplit("/", 1)[0] for rel in paths if "/" in rel and rel.endswith((".py", ".so"))}


def is_dropped(rel: str, options: PackagingOptions, code_folders: set[str]) -> bool:
    """Whether a slim option leaves the file at ``rel`` (posix path below ``python/``) out of the zip."""
    parts = rel.split("/")
    if parts[0].endswith(".dist-info"):
        return False
    folders = parts[:-1]
    if options.drop_tests and "tests" in folders:
        return True
    if options.drop_type_stubs and rel.endswith(".pyi"):
        return True
    if options.drop_docs:
        for i, name in enumerate(folders):
            if name in _DOC_FOLDERS and "/".join(parts[: i + 1]) not in code_folders:
                return True
        if rel.lower().endswith(_DOC_SUFFIXES) and not _is_licence(parts[-1]):
            return True
    return False


def elf_machine(path: Path) -> str | None:
    """``x86_64``/``aarch64`` for an ELF file of one of Lambda's machines, ``None`` for anything else."""
    with open(path, "rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return _ELF_MACHINES.get(machine, "other")


_PT_LOAD = 1
_ELF64_HEADER_SIZE = 64


def _load_segments(data: bytes) -> list[tuple[int, int, int, int, int, int]] | None:
    """(flags, offset, vaddr, filesz, memsz, align) of every ``PT_LOAD`` of an ELF64 object."""
    if len(data) < 64 or data[4] != 2:  # ELFCLASS64 only: Lambda runs 64-bit objects
        return None
    order = "<" if data[5] == 1 else ">"
    (phoff,) = struct.unpack_from(order + "Q", data, 32)
    phentsize, phnum = struct.unpack_from(order + "HH", data, 54)
    segments = []
    for i in range(phnum):
        start = phoff + i * phentsize
        if start + 56 > len(data):
            return None
        p_type, flags, offset, vaddr, _, filesz, memsz, align = struct.unpack_from(order + "IIQQQQQQ", data, start)
        if p_type == _PT_LOAD:
            segments.append((flags, offset, vaddr, filesz, memsz, align))
    return segments


def same_loaded_image(original: bytes, stripped: bytes) -> bool:
    """Whether the loader maps the same bytes at the same addresses from both objects."""
    before, after = _load_segments(original), _load_segments(stripped)
    if before is None or after is None or len(before) != len(after):
        return False
    for (fa, oa, va, sa, ma, aa), (fb, ob, vb, sb, mb, ab) in zip(before, after, strict=True):
        if (fa, va, sa, ma, aa) != (fb, vb, sb, mb, ab):
            return False
        if ab > 1 and ob % ab != vb % ab:
            return False
        # The ELF header is mapped too, but its section-header fields (which strip rewrites) are not read by the loader.
        skip = _ELF64_HEADER_SIZE if oa == 0 else 0
        if original[oa + skip : oa + sa] != stripped[ob + skip : ob + sb]:
            return False
    return True


def find_strip(machine: str) -> str | None:
    """A strip that handles ``machine``'s objects: the cross one of binutils, llvm-strip, or the host's."""
    candidates = [f"{machine}-linux-gnu-strip", "llvm-strip"]
    if platform.machine() in (machine, "arm64" if machine == "aarch64" else machine):
        candidates.insert(0, "strip")
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return None


def _strip_hint(machine: str) -> str:
    package = "binutils" if platform.machine() == machine else f"binutils-{machine.replace('_', '-')}-linux-gnu"
    return f"install {package} (apt-get install {package}) or llvm, or turn strip_debug_symbols off"


def strip_debug(source: Path, dir_scratch: Path, *, runner: CommandRunner = SUBPROCESS) -> tuple[Path, bool]:
    """(``source`` with its debug sections removed, as a file in ``dir_scratch``, or ``source`` itself;
    whether an ELF object was left unstripped because strip would change what the loader maps)."""
    machine = elf_machine(source)
    if machine is None:
        return source, False
    if machine == "other":
        raise LayerError(f"strip_debug_symbols: {source} is an ELF object for neither x86_64 nor aarch64")
    tool = find_strip(machine)
    if tool is None:
        raise LayerError(f"strip_debug_symbols: no strip for {machine} objects on this machine; {_strip_hint(machine)}")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    target = dir_scratch / f"{digest}-{source.name}"
    refused = target.with_name(target.name + ".unchanged")
    if target.is_file():
        return target, False
    if refused.is_file():
        return source, True
    dir_scratch.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    result = runner.run([tool, "--strip-debug", "-o", str(partial), str(source)])
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise LayerError(
            f"strip_debug_symbols: {os.path.basename(tool)} failed on {source}: {detail[-1] if detail else result.returncode}; "
            f"{_strip_hint(machine)}"
        )
    if not same_loaded_image(source.read_bytes(), partial.read_bytes()):
        partial.unlink()
        refused.touch()
        return source, True
    os.chmod(partial, source.stat().st_mode & 0o777)  # the executable bit is part of the zip
    os.replace(partial, target)
    return target, False


def slim_layer_files(
    kept: Mapping[str, Path], options: PackagingOptions, *, dir_scratch: Path, runner: CommandRunner = SUBPROCESS
) -> tuple[dict[str, Path], list[str]]:
    """The files to ship after the slim options (some dropped, shared objects replaced by stripped copies),
    and the ELF objects shipped unstripped because strip would change what the loader maps."""
    code_folders = _package_folders(kept)
    slimmed: dict[str, Path] = {}
    unstripped: list[str] = []
    for rel, path in sorted(kept.items()):
        if is_dropped(rel, options, code_folders):
            continue
        if options.strip_debug_symbols and not rel.split("/")[0].endswith(".dist-info"):
            path, refused = strip_debug(path, dir_scratch, runner=runner)
            if refused:
                unstripped.append(rel)
        slimmed[rel] = path
    return slimmed, unstripped
