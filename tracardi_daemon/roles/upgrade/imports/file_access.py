"""Which files an import may read: regular files only, under the operator's
``upgrade.import_dirs`` once links and ``..`` are resolved, never the daemon's own
configuration, licence, key or CA files; checked by name before opening and again on
the open file, so a link swapped in between does not get past."""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from tracardi_daemon.config.settings import Settings
from tracardi_daemon.errors import InvalidInput

DEFAULT_MAX_LINE_BYTES = 1 << 20
# never import files: kernel and device views, whatever import_dirs says
_SYSTEM_DIRS = (Path("/proc"), Path("/sys"), Path("/dev"))
_PEEK_BYTES = 64
_FD_LINKS = Path("/proc/self/fd")


@dataclass(frozen=True)
class FileAccess:
    """``import_dirs`` None: any directory (the file sources used as a library);
    ``refused``: resolved paths never read."""

    import_dirs: tuple[Path, ...] | None = None
    refused: frozenset[Path] = frozenset()
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> FileAccess:
        own = (settings.source, settings.license.file, settings.license.public_key_file,
               settings.elastic.ca_file, settings.redis.ca_file)
        return cls(tuple(Path(os.path.realpath(d)) for d in settings.upgrade.import_dirs),
                   frozenset(Path(os.path.realpath(p)) for p in own if p),
                   settings.upgrade.import_max_line_bytes)

    def open(self, path: Path) -> io.BufferedReader:
        """``path`` opened for reading in binary; InvalidInput naming ``config.path``
        and the rule when it may not be read."""
        self._check(path, Path(os.path.realpath(path)))
        try:
            # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOCTTY: a
            # terminal must not become the daemon's
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"cannot read {path}: "
                               f"{getattr(exc, 'strerror', None) or exc}") from None
        try:
            self._check_open(path, fd)
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def _check(self, path: Path, real: Path) -> None:
        system = next((d for d in _SYSTEM_DIRS if real.is_relative_to(d)), None)
        if system is not None:
            raise InvalidInput(f"config.path: {path} is under {system}, which imports never "
                               "read")
        if real in self.refused:
            raise InvalidInput(f"config.path: {path} is one of the daemon's own "
                               "configuration, licence, key or CA files")
        if self.import_dirs is not None and not any(
                real.is_relative_to(directory) for directory in self.import_dirs):
            shown = ", ".join(map(str, self.import_dirs)) or "none"
            raise InvalidInput(f"config.path: {path} is not in a directory that imports may "
                               f"read (upgrade.import_dirs: {shown})")

    def _check_open(self, path: Path, fd: int) -> None:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidInput(f"config.path: {path} is not a regular file (a device, FIFO, "
                               "socket or directory); imports read regular files only")
        link = _FD_LINKS / str(fd)
        if link.is_symlink():  # where the open file really is (Linux)
            self._check(path, Path(os.readlink(link)))
        head = os.pread(fd, _PEEK_BYTES, 0)
        if head.lstrip().startswith(b"-----BEGIN") and b"PRIVATE KEY" in head:
            raise InvalidInput(f"config.path: {path} holds a private key; imports do not "
                               "read key files")


# regular files anywhere, lines bounded: the file sources used as a library
ANY_FILE = FileAccess()
