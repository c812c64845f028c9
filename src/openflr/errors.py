"""Typed errors shared by every layer.

Each error also subclasses the matching builtin (``FileNotFoundError``, ``PermissionError``, ...) so
that plain Python code can catch it naturally, and carries its HTTP status as a class attribute
(``status``): ``api/`` renders that status, never deciding by message text.
"""

from __future__ import annotations

import math


class OpenflrError(Exception):
    """Base of every error openflr raises on purpose. ``message`` is safe to show to a client."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        """Response headers that go with this error (``Retry-After``, ``Content-Range``)."""
        return {}


class BadRequestError(OpenflrError, ValueError):
    """The request is malformed: bad parameter, body or path syntax."""

    status = 400


class UnauthorizedError(OpenflrError, PermissionError):
    """No, wrong or expired credentials or session token."""

    status = 401


class ForbiddenError(OpenflrError, PermissionError):
    """Authenticated, but the role or the user's restrictions forbid this."""

    status = 403


class NotFoundError(OpenflrError, LookupError):
    """The named resource (session, point, mount, task, ...) does not exist or is not visible."""

    status = 404


class GuestPathNotFoundError(NotFoundError, FileNotFoundError):
    """A path inside a guest file system does not exist."""


class NotSupportedError(OpenflrError, NotImplementedError):
    """An EM operation openflr does not perform (running or editing jobs): EM's 501."""

    status = 501


class ConflictError(OpenflrError):
    """The request conflicts with the current state of the resource."""

    status = 409


class PayloadTooLargeError(OpenflrError):
    """The request body exceeds the configured limit."""

    status = 413


class UnsupportedMediaTypeError(OpenflrError, ValueError):
    """A request body of a type that is neither JSON nor XML (a form, plain text)."""

    status = 415


class RangeNotSatisfiableError(OpenflrError):
    """A ``Range`` header names no byte of the resource."""

    status = 416

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size

    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


class RetryLaterError(OpenflrError):
    """A refusal the client may retry after ``retry_after`` seconds (sent as ``Retry-After``)."""

    def __init__(self, message: str, retry_after: float = 5) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class UnavailableError(RetryLaterError):
    """The server is at a configured limit; the client may retry later."""

    status = 503


class TooManyRequestsError(RetryLaterError):
    """This client or user is over its own limit (logon locks, sessions per user): 429."""

    status = 429
