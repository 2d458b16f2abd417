"""How the outbox's files land in their folder, a batch at a time, never taken as sent
unless whole.

A new file is created under its final name (``O_EXCL``), its bytes written in one call and
closed: one operation on the folder per file. An error seen while writing (a full disk)
removes the part written. A name that already exists (a re-sent batch, every copy of a test
send) is written under a temporary name and renamed over the old file, so a whole copy is
never replaced by part of one; a run killed meanwhile leaves that temporary file, which the
next batch into the folder removes (``sweep_dead_temporaries``).

A program reading the folder during a send may meet a file being written (for the
microseconds of its one write); one reading it after the send finds every file whole.
What a crash (``kill -9``, a power cut) can leave is a file cut short under its own name, in
a batch the ledger then calls uncertain; such a file is not proof of sending: the outbox's
evidence takes only a file that ends with its closing MIME boundary (send/activity.py), and
``--retry-uncertain`` writes it again, whole, under the same name. Writing each file as an
unnamed inode (``O_TMPFILE``) and naming it once written did not spare that check: nothing is
fsynced, so after a power cut a named file could still miss bytes. It cost every file two
more updates of the file system's journal (the inode goes on the orphan list and off it
again, under one lock for the whole file system), which made writing 100,000 files from two
threads slower than from one (benchmarks/README.md, issue 15's seventh round).

One thread writes a batch's files (``WRITERS``) while the send loop records the last batch
and claims the next (SQLite, outside Python's global lock): on a 2-core machine that is a
core each. More writers were worth it while each file took the orphan list's lock; with
files created in place they only contend for Python's lock, which each of them takes back
after every system call (three per file): 100,000 files from a cold page cache, one writer
against two, 8.7-10.4 s against 10.4-11.0 s, CPU 13-14 s against 16-19 s, and the same
within the noise as the machine comes (benchmarks/README.md). The lander can still share a
batch among several threads (``EQUIP_OUTBOX_WRITERS``, for a machine with more cores).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from equip_mailer.send.lock_owner import pid_alive
from equip_mailer.settings_values import whole_number_env

T = TypeVar("T")

WRITERS = 1  # threads writing one batch's files (see above)
MAX_WRITERS = 8
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_REPLACE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)


class FileLander:
    """Writes whole files into one folder, a batch at a time, shared among ``writers``."""

    def __init__(self, folder: str, writers: int = WRITERS):
        self.folder = folder
        self.writers = max(1, writers)
        self._pid = os.getpid()
        self._pool: ThreadPoolExecutor | None = None
        self._swept = False  # temporary files of dead runs removed (on the first batch)
        # A batch being landed and close() never overlap: after Ctrl+C the send thread may
        # still be writing when the caller closes; close then waits for those files.
        self._busy = threading.Lock()

    def land_all(self, items: Sequence[T], make: Callable[[T], tuple[str, bytes]]) -> None:
        """Each item's ``(name, data)`` from ``make``, landed in the folder, ``folder/name``
        holding all of ``data`` or being as it was (short of a crash: see the module's
        docstring). The first error is raised once every writer has stopped; files already
        landed stay (each is whole)."""
        with self._busy:
            self._land_all(items, make)

    def _land_all(self, items: Sequence[T], make: Callable[[T], tuple[str, bytes]]) -> None:
        dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if not self._swept:
                sweep_dead_temporaries(self.folder)
                self._swept = True
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
            if not self._create_new(dir_fd, name, data):
                self._rename_over(dir_fd, name, data)

    def _create_new(self, dir_fd: int, name: str, data: bytes) -> bool:
        """Write a file that does not exist yet; False if the name is taken. No part of a
        file is left behind by an error seen here (a full disk, or an error that only
        close reports, as on network file systems)."""
        try:
            fd = os.open(name, _CREATE, 0o666, dir_fd=dir_fd)
        except FileExistsError:
            return False
        try:
            _write_all(fd, data)
        except BaseException:
            _discard(fd, name, dir_fd)
            raise
        try:
            os.close(fd)
        except OSError:
            _unlink(name, dir_fd)
            raise
        return True

    def _rename_over(self, dir_fd: int, name: str, data: bytes) -> None:
        # The thread in the name too: two writers may be given the same name in one batch
        # (every copy of a test send is test/<segment>.eml), and must not share a temp file.
        tmp = f".{name}.{self._pid}.{threading.get_ident()}.tmp"
        try:
            fd = os.open(tmp, _REPLACE, 0o666, dir_fd=dir_fd)
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            _unlink(tmp, dir_fd)
            raise


_TEMPORARY = re.compile(r"\.(.+)\.([0-9]{1,10})\.([0-9]+)\.tmp", re.ASCII)


def sweep_dead_temporaries(folder: str) -> list[str]:
    """Remove the temporary files (``.<name>.<pid>.<thread>.tmp``) that a run killed while
    replacing a file left behind; a live process's are left alone. Returns their names."""
    removed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            m = _TEMPORARY.fullmatch(entry.name)
            if m and not pid_alive(int(m.group(2))):
                _unlink(entry.path)
                removed.append(entry.name)
    return removed


def writers_from_env(env: Mapping[str, str] | None = None) -> int:
    """EQUIP_OUTBOX_WRITERS (1..8): threads writing a batch's files; WRITERS if unset."""
    n = whole_number_env(os.environ if env is None else env, "EQUIP_OUTBOX_WRITERS", 1, MAX_WRITERS)
    return WRITERS if n is None else n


def _discard(fd: int, name: str, dir_fd: int) -> None:
    """Close a file whose writing failed and remove it, unless its name is another writer's
    whole copy by now (a test send's copies share a name). Never raises: the caller raises
    the error that got here."""
    try:
        if os.stat(name, dir_fd=dir_fd).st_ino == os.fstat(fd).st_ino:
            _unlink(name, dir_fd)
    except OSError:
        pass
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def _unlink(name: str, dir_fd: int | None = None) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
