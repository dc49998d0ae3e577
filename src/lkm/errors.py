"""The one exception root of lkm and its families.

Every error lkm raises on bad input is an ``LkmError``; its ``str()`` is a one-line message
ready to print after ``prog: ERROR: ``.
"""

from __future__ import annotations


class LkmError(Exception):
    """Root of every error lkm raises on purpose."""


class FormatError(LkmError):
    """A file's bytes are not what its format requires (ELF, compression, signature, index)."""

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None) -> None:
        self.path = path
        self.offset = offset
        self.detail = message
        where = ""
        if path is not None:
            where = f"{path}: "
        if offset is not None:
            message = f"{message} (at byte {offset:#x})"
        super().__init__(where + message)


class DecompressionError(FormatError):
    """A compressed stream is corrupt or uses a method this build cannot read.

    ``method`` names the compression (``xz``, ``zstd``, ``gzip``); ``reason`` is the failure in
    the decompressor library's own words, as kmod reports it (e.g. ``File is corrupt``), or
    None when kmod reports nothing beyond the failed read.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        offset: int | None = None,
        method: str = "",
        reason: str | None = None,
    ) -> None:
        super().__init__(message, path=path, offset=offset)
        self.method = method
        self.reason = reason


class ElfError(FormatError):
    """The ELF structure is broken or not what a kernel module needs."""


class SignatureError(FormatError):
    """The appended module signature or its PKCS#7 blob is malformed."""


class IndexFormatError(FormatError):
    """A binary index (``*.bin``) file is malformed."""


class NotFoundError(LkmError):
    """A module, alias or directory that was asked for does not exist."""


class ModuleFileError(LkmError):
    """A module file could not be opened or read (missing, a directory, no permission)."""

    def __init__(self, message: str, *, path: str, errno: int | None = None) -> None:
        self.path = path
        self.errno = errno
        super().__init__(message)


class NotElfError(ElfError):
    """The bytes are not an ELF file at all (no ``\\x7fELF`` identification); kmod: ENOEXEC."""


class IndexHeaderError(IndexFormatError):
    """A binary index whose header is not kmod's: ``field`` is ``magic`` or ``version``,
    ``found`` the value read and ``expected`` the one required (for ``version``, the major
    number in the top 16 bits)."""

    def __init__(
        self, message: str, *, path: str | None, offset: int, field: str, found: int, expected: int
    ) -> None:
        super().__init__(message, path=path, offset=offset)
        self.field = field
        self.found = found
        self.expected = expected


class IndexMapError(IndexFormatError):
    """An index path that opens but cannot be mapped into memory (a directory: ENODEV).

    ``fd`` and ``size`` are the descriptor and length the failed mmap was given, ``errno`` its
    error: kmod prints all three (``mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 3, 0): ...``)."""

    def __init__(self, message: str, *, path: str, fd: int, size: int, errno: int) -> None:
        super().__init__(message, path=path)
        self.fd = fd
        self.size = size
        self.errno = errno


class ModuleDirectoryError(LkmError):
    """A module directory (``/lib/modules/RELEASE``) that does not exist or is no directory.

    ``path`` is the directory looked for; ``errno`` is ENOENT or ENOTDIR.
    """

    def __init__(self, path: str, code: int) -> None:
        import os

        self.path = path
        self.errno = code
        super().__init__(f"module directory {path}: {os.strerror(code)}")
