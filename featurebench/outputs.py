"""Checks that an output can be written, made before any work, and writes that never leave a temporary file.

``extract``, ``fit`` and ``report`` call these first, so a bad ``-o``/``--out`` (a folder where
a file is expected, a file where a folder is, a read-only place, a name too long) is a
clear error at once instead of a traceback after the work is done.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from featurebench.errors import FeaturebenchError


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_writable_folder(folder: Path, flag: str, create: bool = True) -> None:
    """``folder`` is (or, with ``create``, can be made) a folder this process can write into.

    Probed with a real temporary file (``os.access`` is wrong for root and for read-only mounts).
    """
    if folder.exists() and not folder.is_dir():
        raise FeaturebenchError(f"{flag} {folder} is a file, not a folder; choose a folder (or another name).")
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".featurebench-probe-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise FeaturebenchError(f"{flag} {folder}: cannot write there ({_reason(exc)}); choose a folder you can "
                                "write to.") from None


def check_output_file(path: Path, flag: str, force: bool = True, name_extra: int = 0,
                      create_parent: bool = False, example: str = "output") -> None:
    """``path`` can be written as a file: it is not a folder, its folder exists (or, with
    ``create_parent``, is created) and is writable, its name plus ``name_extra`` bytes (the
    suffixes of temporary names) fits the file system, and without ``force`` it does not exist yet.
    ``example``: a file name suggested when ``path`` is a folder."""
    if path.is_dir():
        raise FeaturebenchError(f"{flag} {path} is a folder; give the path of a file to write, e.g. {path / example}")
    if create_parent:
        check_writable_folder(path.parent, flag)
    if not path.parent.is_dir():
        raise FeaturebenchError(f"Output folder {path.parent} does not exist; create it first.")
    try:
        name_max = os.pathconf(path.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    length = len(os.fsencode(path.name))
    if length + name_extra > name_max:
        raise FeaturebenchError(
            f"{flag}: the file name is {length} bytes long; names here can have {name_max} bytes"
            + (f" and featurebench adds up to {name_extra} for its temporary files" if name_extra else "")
            + f": use a name of at most {name_max - name_extra} bytes.")
    check_writable_folder(path.parent, flag, create=False)
    if path.exists() and not force:
        raise FeaturebenchError(f"{path} already exists; pass --force to overwrite it (or choose another {flag}).")


def check_not_an_input(output: Path, inputs: Iterable[Path], flag: str) -> None:
    """Refuse an output that is one of the command's inputs, or a folder holding one: writing it
    (or replacing it with ``--force``) would destroy what is being read. Every command that writes
    from inputs calls this before any work."""
    target = Path(output).expanduser().resolve()
    for item in inputs:
        source = Path(item).expanduser().resolve()
        if source == target or target in source.parents:
            what = "is" if source == target else "holds"
            raise FeaturebenchError(f"{flag} {target} {what} one of the inputs ({source}); writing there would "
                                    f"destroy it: choose another {flag}.")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a unique temporary file next to ``path``, then rename it to ``path``.

    On any failure the temporary file is removed and an ``OSError`` becomes a clear error.
    """
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it the usual mode
        os.replace(tmp, path)
    except OSError as exc:
        raise FeaturebenchError(f"Could not write {path} ({_reason(exc)}).") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path
