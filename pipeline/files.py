"""Writing outputs safely: files and folders that nobody ever sees half of, the recovery of
what a crashed writer left behind, the one-paragraph message of an OS error while writing,
and the lock that lets one scoring run at a time use an output folder.

A folder is replaced whole (`atomic_directory`). The new one is written into a hidden
staging folder beside the target, `.<name>.staging-<pid>-<random>`, flushed to disk, and
swapped in:

1. Where the system can exchange two names in one step (Linux `renameat2` with
   RENAME_EXCHANGE, macOS `renamex_np` with RENAME_SWAP), staging and target trade names:
   the target holds the new folder and the staging name the old one. The target path holds
   a whole folder, old or new, at every moment.
2. Elsewhere: rename the target to `.<name>.old-<pid>`, rename staging to the target. A
   crash between the two leaves no target; the next writer restores the old folder.
3. The old folder is removed (an `.old-` folder is renamed to a staging name first, so an
   `.old-` folder is always whole and may be restored).

Every writer of a target first recovers its leftovers (`recover_leftovers`): a missing
target comes back from its newest `.old-` folder, and staging and old folders whose process
is gone are removed (they can be as large as a whole at-risk list). A failure before the
swap removes the staging folder and leaves the target as it was.

The run lock is an OS lock (`filelock`, flock on Unix) on `<folder>/.lock`: the operating
system releases it when its holder ends, by a crash or a kill too, so a crashed run's lock
is simply taken over; a live one stops the second run at once."""

from __future__ import annotations

import ctypes
import errno
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from filelock import FileLock, Timeout

from pipeline.errors import OutputError, RunLockedError

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
_LEFTOVER = re.compile(r"(?P<kind>staging|old)-(?P<pid>\d+)(?:-.*)?")
# Before staging folders carried their writer's pid they were `.<name>.<8 random characters>`
# (tempfile's). Their writer cannot be asked, so one is removed once a day old: no publish
# takes that long, and the run lock keeps a second run of this version out meanwhile.
_UNOWNED_STAGING = re.compile(r"[a-z0-9_]{8}")
UNOWNED_STAGING_AGE_S = 24 * 3600


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to `target`; move it onto `target` if the body succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.chmod(0o644)  # mkstemp makes it private; the published file is for readers
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_csv(frame: pd.DataFrame, target: Path, **to_csv_kwargs) -> None:
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, **to_csv_kwargs)


def atomic_write_text(text: str, target: Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --- folders replaced whole ------------------------------------------------------------------


@contextmanager
def atomic_directory(target: Path, guard: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a fresh staging folder beside `target`; when the body succeeds it replaces
    `target` whole (see the module docstring for the swap and what a crash leaves).

    Leftovers of crashed writers of `target` are recovered first. `target` must be missing
    or a real folder: a file or a symbolic link there raises OutputError and is left alone.
    `guard(target)`, when given, may refuse the target too (by raising); it runs before the
    body and again just before the swap."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_leftovers(target)
    _refuse_non_folder(target)
    if guard is not None:
        guard(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-{os.getpid()}-", dir=target.parent))
    swapped = False
    try:
        yield staging
        staging.chmod(0o755)
        _sync_tree(staging)
        _refuse_non_folder(target)
        if guard is not None:
            guard(target)
        _swap_in(staging, target)
        swapped = True
    finally:
        # Before the swap: the unfinished new folder; after an exchange: the old one.
        if os.path.lexists(staging):
            _remove_quietly(staging, "the replaced folder" if swapped else "an unfinished staging folder")


def atomic_symlink(pointed: str, link: Path) -> None:
    """Make `link` a symbolic link to `pointed` (a path relative to the link's folder) in one
    step: the new link is made under a staging name beside it, `.<name>.staging-<pid>-link`,
    and renamed over it. rename(2) replaces a link atomically, so a reader finds the old link
    or the new one, never none. Staging links of crashed writers are removed first. The caller
    makes sure `link` is a link (rename cannot replace a folder)."""
    recover_leftovers(link)
    staging = link.with_name(f".{link.name}.staging-{os.getpid()}-link")
    os.symlink(pointed, staging)
    try:
        os.replace(staging, link)
    finally:
        if os.path.lexists(staging):
            staging.unlink()
    _sync_folder(link.parent)


def _refuse_non_folder(target: Path) -> None:
    if target.is_symlink():
        raise OutputError(
            f"{target} is a symbolic link (to {os.readlink(target)}), where the run writes a folder that it replaces "
            "as a whole. The run does not replace a link it did not create, so the link and what it points to are "
            "left as they are. Remove the link, or point the output setting at the folder it leads to, and rerun."
        )
    if os.path.lexists(target) and not target.is_dir():
        raise OutputError(
            f"{target} is a file, where the run writes a folder that it replaces as a whole. The run does not "
            "replace a file it did not write, so the file is left as it is. Move it away, or point the output "
            "setting at another folder, and rerun."
        )


def _swap_in(staging: Path, target: Path) -> None:
    if not os.path.lexists(target):
        os.rename(staging, target)
    elif not _exchange(staging, target):
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(old, target)
            raise
        _discard(old, target)
    _sync_folder(target.parent)


def _discard(old: Path, target: Path) -> None:
    """Remove an `.old-` folder of target. It is renamed to a staging name first, so that an
    `.old-` folder is always whole: one killed halfway through its removal is never restored."""
    doomed = target.with_name(f".{target.name}.staging-{os.getpid()}-discarded-{old.name.rsplit('-', 1)[-1]}")
    try:
        os.rename(old, doomed)
    except OSError as exc:
        log.warning("could not remove the replaced folder %s (%s); the next run removes it", old, exc)
        return
    _remove_quietly(doomed, "the replaced folder")


def recover_leftovers(target: Path) -> None:
    """Undo what crashed writers of `target` left beside it: restore a missing target from
    its newest `.<name>.old-<pid>` folder, and remove every staging and old folder whose
    process is gone. Folders of a writer that still runs are left alone."""
    target = Path(target)
    if not target.parent.is_dir():
        return
    prefix = f".{target.name}."
    olds, others = [], []
    for entry in target.parent.iterdir():
        match = _LEFTOVER.fullmatch(entry.name[len(prefix):]) if entry.name.startswith(prefix) else None
        if match is None:
            if entry.name.startswith(prefix) and _UNOWNED_STAGING.fullmatch(entry.name[len(prefix):]) and (
                    time.time() - entry.lstat().st_mtime > UNOWNED_STAGING_AGE_S):
                others.append(entry)
            continue
        if not _writer_gone(int(match["pid"])):
            continue
        (olds if match["kind"] == "old" and entry.is_dir() and not entry.is_symlink() else others).append(entry)
    if olds and not os.path.lexists(target):
        newest = max(olds, key=lambda p: p.stat().st_mtime_ns)
        os.rename(newest, target)
        olds.remove(newest)
        log.warning("restored %s from %s, left by a run that crashed while replacing it", target, newest.name)
    for entry in olds:
        _discard(entry, target)
    for entry in others:
        _remove_quietly(entry, "a leftover of a crashed run")


def process_gone(pid: int) -> bool:
    """Whether the process `pid` on this host no longer runs (a zombie counts as gone). What
    crashed runs leave behind (staging folders, engine folders, RUNNING runs) is named after its
    process, and is no one's once that process is gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):  # no /proc here: alive, as far as can be told
        return False


def _writer_gone(pid: int) -> bool:
    """True when the process that wrote a leftover no longer runs. This process counts as
    gone: it writes one target at a time, so its own leftovers are from an earlier attempt."""
    return pid == os.getpid() or process_gone(pid)


def _remove_quietly(path: Path, what: str) -> None:
    """Remove a folder (or a stray file or link) the run no longer needs. A failure is logged,
    not raised: the run's result is already safe, and the next run removes it."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        log.warning("could not remove %s %s (%s); the next run removes it", what, path, exc)
    else:
        log.debug("removed %s %s", what, path)


def _sync_tree(folder: Path) -> None:
    """Flush every file in `folder` to disk, so a power cut after the swap cannot leave the
    new folder's names pointing at empty files."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _sync_folder(folder)


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (names) to disk, where the system allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the names are still written in order
    finally:
        os.close(fd)


@functools.cache
def _exchange_call() -> Callable[[bytes, bytes], int] | None:
    """The system's atomic exchange of two names, or None where there is none."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    if sys.platform.startswith("linux") and (renameat2 := getattr(libc, "renameat2", None)) is not None:
        renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        renameat2.restype = ctypes.c_int
        at_fdcwd, rename_exchange = -100, 2  # linux/fcntl.h, linux/fs.h
        return lambda a, b: renameat2(at_fdcwd, a, at_fdcwd, b, rename_exchange)
    if sys.platform == "darwin" and (renamex_np := getattr(libc, "renamex_np", None)) is not None:
        renamex_np.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
        renamex_np.restype = ctypes.c_int
        rename_swap = 2  # sys/stdio.h
        return lambda a, b: renamex_np(a, b, rename_swap)
    return None


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names of `a` and `b` in one atomic step; False where the system or the file
    system cannot (the caller then renames twice)."""
    call = _exchange_call()
    if call is None:
        return False
    if call(os.fsencode(a), os.fsencode(b)) == 0:
        return True
    code = ctypes.get_errno()
    if code in {errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP}:
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


# --- what an OS error while writing means ----------------------------------------------------


def output_error(exc: OSError, path: Path, doing: str, setting: str) -> OutputError:
    """One paragraph for an OS error while writing `path` (a file or a folder the run
    creates in `path.parent`): what failed, where, and how to fix it. `doing` completes
    "Could not ..." (e.g. "write the at-risk list to"); `setting` names what chooses the
    folder (e.g. "scoring.output_dir")."""
    code = exc.errno
    folder = path.parent
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        cause = "the disk (or the user's quota) is full"
        fix = f"Free space on the disk that holds {folder}, or point {setting} at another disk"
    elif code == errno.EROFS:
        cause = "the file system is read-only"
        fix = f"Mount it writable, or point {setting} at a writable folder"
    elif code in (errno.EACCES, errno.EPERM):
        cause = f"user {_user()} may not write in {folder}"
        fix = f"Give {_user()} write access to {folder}, or point {setting} at a folder it may write"
    elif code in (errno.EEXIST, errno.ENOTDIR):
        where = Path(exc.filename) if exc.filename else folder
        cause = f"{where} (or a folder above it) is a file where a folder belongs"
        fix = f"Move the file away, or point {setting} at a folder"
    else:
        cause = "the operating system reported an error"
        fix = f"Check the folder and the disk behind {setting}"
    detail = f"{errno.errorcode.get(code, 'OSError')}: {exc.strerror or exc}" if code else str(exc)
    return OutputError(f"Could not {doing} {path}: {cause} ({detail}). {fix}, then rerun. Nothing was "
                       "replaced: what was there before is as it was.")


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid()) if hasattr(os, "getuid") else "this user"


def file_sha256(path: Path, chunk_bytes: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


# --- one scoring run at a time -----------------------------------------------------------------


def _write_owner(fd: int) -> None:
    """Record who holds the lock in the lock file, for the message a second run shows."""
    owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, owner, 0)


@contextmanager
def run_lock(folder: Path, job: str = "scoring run", setting: str = "scoring.output_dir") -> Iterator[None]:
    """Hold the run lock of an output folder for the body (a scoring run's, or an import's:
    `job` and `setting` name it in messages): `<folder>/.lock`, an OS
    lock that is released when its holder ends, however it ends. Never waits: while another
    process holds it, RunLockedError (exit 5) names the folder and the holder. Re-entrant
    within a process: a publish inside a run that holds the lock joins it, so the lock is
    taken once per run. A folder that cannot hold the lock file (a file there, read-only,
    no permission, full) raises OutputError (exit 7)."""
    folder = Path(folder)
    lock_path = folder / LOCK_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(lock_path, timeout=0, is_singleton=True, on_acquired=_write_owner)
        lock.acquire()
    except Timeout:
        raise RunLockedError(
            f"Another {job} holds {lock_path} ({_owner_of(lock_path)}), so this run stopped before reading "
            f"anything: one {job} at a time writes into {folder}. Wait for that run to finish and rerun. The lock is "
            "the operating system's and ends with its process, even a crashed one, so there is no file to delete."
        ) from None
    except OSError as exc:
        raise output_error(exc, lock_path, "take the run lock", setting) from exc
    try:
        yield
    finally:
        lock.release()


def _owner_of(lock_path: Path) -> str:
    try:
        owner = json.loads(lock_path.read_text(encoding="utf-8"))
        return f"process {int(owner['pid'])} on {owner['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that is still starting"
