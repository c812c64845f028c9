"""Errors of the disk stack, typed by what went wrong. Each subclasses a built-in exception (so callers
that know nothing of openflr can catch it) and an openflr error that carries its own HTTP status; the
API renders that status and message without knowing the disk stack."""

from __future__ import annotations

from openflr.errors import BadRequestError, GuestPathNotFoundError, NotFoundError, OpenflrError


class ImageError(OpenflrError, OSError):
    """A disk image file cannot be used; ``path`` names it."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class MissingImageError(ImageError, FileNotFoundError):
    """An image file (or a parent or extent it names) does not exist."""


class CorruptImageError(ImageError, ValueError):
    """An image file's structures are damaged, truncated or absurd."""


class UnsupportedImageError(ImageError, NotImplementedError):
    """A valid image of a kind openflr does not read (yet)."""


class VolumeError(OpenflrError, OSError):
    """A volume cannot be read: unknown file system, encrypted, damaged (EM's 501, "unsupported")."""

    status = 501


class HoldsNoFilesError(VolumeError):
    """A volume that is no file system at all (swap space, never written): it is not offered as a root."""


class ImagesChangedError(VolumeError):
    """A point's image files are no longer the files that were opened for its mount (so a second
    opening would read something else)."""


class OpenCancelledError(OpenflrError, TimeoutError):
    """Opening or reading a disk was cancelled, typically because it took longer than allowed."""

    status = 503


class NotADirectoryGuestError(BadRequestError, NotADirectoryError):
    """A listing was asked of a guest path that is a file."""


class IsADirectoryGuestError(BadRequestError, IsADirectoryError):
    """File content was asked of a guest path that is a directory."""


__all__ = [
    "CorruptImageError",
    "GuestPathNotFoundError",
    "ImageError",
    "ImagesChangedError",
    "IsADirectoryGuestError",
    "MissingImageError",
    "NotADirectoryGuestError",
    "NotFoundError",
    "OpenCancelledError",
    "UnsupportedImageError",
    "VolumeError",
]
