"""Bringing a user's project into a run folder: a folder copied, or a .zip unpacked, safely.

Both refuse what could escape or exhaust the folder: absolute names, ``..``, backslashes, names the file
system cannot hold or that hold control characters, symbolic links and other special files, more than
``max_files`` entries, more than ``max_mb`` bytes (counted as they are written, so a zip whose headers
lie about sizes is stopped too), encrypted entries and names given twice. The result is made under a
hidden temporary name and renamed when whole: a refused project leaves nothing behind.
"""
from __future__ import annotations

import os
import secrets
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

CHUNK = 1024 * 1024


class ProjectProblem(Exception):
    """Why a project cannot be used; a sentence for the user."""


def _check_name(name: str) -> tuple[str, ...]:
    """The parts of a relative "/"-separated name, or ProjectProblem."""
    if not name or name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        raise ProjectProblem(f"{name!r} is not a name inside the project")
    parts = PurePosixPath(name).parts
    for part in parts:
        if part in (".", ".."):
            raise ProjectProblem(f"{name!r} leads out of the project")
        if len(part.encode()) > 255:
            raise ProjectProblem(f"a name in {name[:80]!r}... is longer than 255 bytes")
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in part):
            raise ProjectProblem(f"{name!r} holds control characters")
    if len(name.encode()) > 4000:
        raise ProjectProblem("a path in the project is longer than 4000 bytes")
    return parts


def _temporary(target: Path) -> Path:
    if target.exists() or target.is_symlink():
        raise ProjectProblem(f"{target.name} exists already")
    temp = target.parent / f".hebi-unpack-{secrets.token_hex(4)}"
    temp.mkdir(parents=True)
    return temp


def copy_project(source: Path, target: Path, max_files: int, max_mb: int) -> None:
    """Copy the folder ``source`` to ``target`` (which must not exist)."""
    limit = max_mb * 1024 * 1024
    temp = _temporary(target)
    try:
        files, written = 0, 0
        pending = [(source, temp)]
        while pending:
            folder, into = pending.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    files += 1
                    if files > max_files:
                        raise ProjectProblem(f"it holds more than {max_files} files and folders")
                    _check_name(entry.name)
                    info = entry.stat(follow_symlinks=False)
                    where = Path(entry.path).relative_to(source).as_posix()
                    if stat.S_ISLNK(info.st_mode):
                        raise ProjectProblem(f"{where} is a symbolic link: put the file itself in the project")
                    if stat.S_ISDIR(info.st_mode):
                        (into / entry.name).mkdir()
                        pending.append((Path(entry.path), into / entry.name))
                    elif stat.S_ISREG(info.st_mode):
                        written += info.st_size
                        if written > limit:
                            raise ProjectProblem(f"it is larger than {max_mb} MB")
                        shutil.copyfile(entry.path, into / entry.name, follow_symlinks=False)
                        os.chmod(into / entry.name, stat.S_IMODE(info.st_mode) | stat.S_IRUSR | stat.S_IWUSR)
                    else:
                        raise ProjectProblem(f"{where} is not a file or a folder")
        os.rename(temp, target)
    except OSError as error:
        shutil.rmtree(temp, ignore_errors=True)
        raise ProjectProblem(f"it cannot be copied ({_why(error)})") from None
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _why(error: BaseException) -> str:
    # An OSError's text would hold this machine's paths; its reason and the name inside the project do not.
    if isinstance(error, OSError):
        return error.strerror or type(error).__name__
    return str(error) or type(error).__name__


def unpack_zip(archive: Path, target: Path, max_files: int, max_mb: int) -> None:
    """Unpack ``archive`` into ``target`` (which must not exist). A zip whose entries all sit in one
    top folder (what zipping a folder makes) is unpacked from inside it."""
    limit = max_mb * 1024 * 1024
    try:
        zip_file = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise ProjectProblem(f"it is not a readable zip file ({_why(error)})") from None
    with zip_file:
        infos = zip_file.infolist()
        if len(infos) > max_files:
            raise ProjectProblem(f"it holds more than {max_files} files and folders")
        named: dict[tuple[str, ...], zipfile.ZipInfo] = {}
        declared = 0
        for info in infos:
            parts = _check_name(info.filename.rstrip("/") if info.is_dir() else info.filename)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind == stat.S_IFLNK:
                raise ProjectProblem(f"{info.filename} is a symbolic link: put the file itself in the project")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise ProjectProblem(f"{info.filename} is not a file or a folder")
            if info.flag_bits & 0x1:
                raise ProjectProblem(f"{info.filename} is encrypted")
            if parts in named:
                raise ProjectProblem(f"{info.filename} is in it twice")
            named[parts] = info
            declared += info.file_size
            if declared > limit:
                raise ProjectProblem(f"it unpacks to more than {max_mb} MB")
        tops = {parts[0] for parts in named}
        strip = 1 if len(tops) == 1 and all(len(parts) > 1 or named[parts].is_dir() for parts in named) else 0
        temp = _temporary(target)
        try:
            written = 0
            for parts, info in named.items():
                inside = parts[strip:]
                if not inside:
                    continue
                path = temp.joinpath(*inside)
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with zip_file.open(info) as source, open(path, "xb") as out:
                    copied = 0
                    while chunk := source.read(CHUNK):
                        copied += len(chunk)
                        written += len(chunk)
                        if copied > info.file_size or written > limit:
                            raise ProjectProblem(f"it unpacks to more than it says (or more than {max_mb} MB)")
                        out.write(chunk)
                mode = stat.S_IMODE(info.external_attr >> 16)
                if mode:
                    os.chmod(path, (mode & 0o755) | stat.S_IRUSR | stat.S_IWUSR)
            os.rename(temp, target)
        except (zipfile.BadZipFile, NotImplementedError, OSError) as error:
            shutil.rmtree(temp, ignore_errors=True)
            raise ProjectProblem(f"it cannot be unpacked ({_why(error)})") from None
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise


def copy_notebook(source: Path, target: Path, max_mb: int) -> None:
    """A lone notebook as a project: ``target`` holding it (and nothing else)."""
    if source.stat().st_size > max_mb * 1024 * 1024:
        raise ProjectProblem(f"it is larger than {max_mb} MB")
    _check_name(source.name)
    temp = _temporary(target)
    try:
        shutil.copyfile(source, temp / source.name, follow_symlinks=False)
        os.rename(temp, target)
    except OSError as error:
        shutil.rmtree(temp, ignore_errors=True)
        raise ProjectProblem(f"it cannot be copied ({_why(error)})") from None
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
