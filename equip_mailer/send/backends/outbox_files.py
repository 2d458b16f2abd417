"""How the outbox's files land in their folder: whole or not at all, and several at a time.

A file must never be seen half written, by a reader or after a crash. Where Linux offers it,
each file is written as an unnamed inode (``O_TMPFILE``) and given its name only once its
bytes are in (``linkat`` through ``/proc/self/fd``): a crash leaves nothing behind, and the
folder is touched once per file instead of three times (create a temporary name, rename it,
drop the old name). Elsewhere, or for a name that already exists (a re-sent batch), the file
is written under a temporary name and renamed over the final one.

Creating files is mostly kernel work, done outside Python's global lock, and unnamed inodes
are made without locking the folder: a batch's files are therefore written by a few threads
at once (``WRITERS``), which on a 2-core machine more than halves the time of writing them
one after another (benchmarks/README.md, the outbox figures).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

WRITERS = 2  # threads writing one batch's files
_NO_TMPFILE = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT, errno.EXDEV}


class FileLander:
    """Writes whole files into one folder, a batch at a time, shared among ``writers``."""

    def __init__(self, folder: str, writers: int = WRITERS):
        self.folder = folder
        self.writers = max(1, writers)
        self._pid = os.getpid()
        # Until the first file says otherwise (a file system without it answers at once).
        self._tmpfile = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")
        self._pool: ThreadPoolExecutor | None = None
        # A batch being landed and close() never overlap: after Ctrl+C the send thread may
        # still be writing when the caller closes; close then waits for those files.
        self._busy = threading.Lock()

    def land_all(self, items: Sequence[T], make: Callable[[T], tuple[str, bytes]]) -> None:
        """Each item's ``(name, data)`` from ``make``, landed in the folder, ``folder/name``
        holding all of ``data`` or being as it was. The first error is raised once every
        writer has stopped; files already landed stay (each is whole)."""
        with self._busy:
            self._land_all(items, make)

    def _land_all(self, items: Sequence[T], make: Callable[[T], tuple[str, bytes]]) -> None:
        dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if self.writers == 1 or len(items) < 2 * self.writers:
                self._land_each(dir_fd, items, make)
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.writers, thread_name_prefix="equip-outbox")
            futures = [
                self._pool.submit(self._land_each, dir_fd, items[i :: self.writers], make)
                for i in range(self.writers)
            ]
            for exc in [f.exception() for f in futures]:
                if exc is not None:
                    raise exc
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        """Stop the writer threads (waiting for any still writing). The lander stays
        usable: the next batch big enough to share out starts them again."""
        with self._busy:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def _land_each(
        self, dir_fd: int, items: Sequence[T], make: Callable[[T], tuple[str, bytes]]
    ) -> None:
        for item in items:
            name, data = make(item)
            if self._tmpfile:
                try:
                    if self._link_new(dir_fd, name, data):
                        continue
                except OSError as exc:
                    if exc.errno not in _NO_TMPFILE:
                        raise
                    self._tmpfile = False  # no O_TMPFILE here: rename from now on
            self._rename_over(name, data)

    def _link_new(self, dir_fd: int, name: str, data: bytes) -> bool:
        """Write an unnamed file, then name it; False if the name is taken (a re-send)."""
        fd = os.open(self.folder, os.O_TMPFILE | os.O_WRONLY, 0o666)
        try:
            _write_all(fd, data)
            try:
                # dst_dir_fd makes this linkat(..., AT_SYMLINK_FOLLOW): the open file itself
                # gets the name, not the /proc link.
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd)
            except FileExistsError:
                return False
            return True
        finally:
            os.close(fd)

    def _rename_over(self, name: str, data: bytes) -> None:
        # The thread in the name too: two writers may be given the same name in one batch
        # (every copy of a test send is test/<segment>.eml), and must not share a temp file.
        tmp = os.path.join(self.folder, f".{name}.{self._pid}.{threading.get_ident()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, os.path.join(self.folder, name))
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
