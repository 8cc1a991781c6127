"""labspace's own error tree, translated to HTTP or exit codes once, at the edges.

    LabspaceError                 base; ``message`` is safe to show to the person
    ├── InvalidInput              bad names, bad values (HTTP 400 / 422)
    ├── NotAuthenticated          no or bad credentials (HTTP 401)
    ├── PermissionDenied          authenticated but not allowed (HTTP 403)
    ├── NotFound                  no such user, template, workspace (HTTP 404)
    ├── Conflict                  exists already, or wrong state for the operation (HTTP 409)
    │   └── QuotaExceeded         a start would pass a user's or group's quota (HTTP 409)
    ├── TooManyAttempts           too many failed logins; retry later (HTTP 429)
    └── RuntimeFailure            the container engine failed (HTTP 502)
        └── StartFailed           a workspace did not become healthy; carries its last log lines

Foreign errors (aiodocker, SQLAlchemy) are mapped to these in the module that talks to them,
so callers never import a driver to catch its exceptions.
"""

from __future__ import annotations


class LabspaceError(Exception):
    """Base class. ``message`` is for people; ``detail`` is for logs."""

    http_status = 500
    exit_code = 1

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class InvalidInput(LabspaceError):
    http_status = 400
    exit_code = 2


class NotAuthenticated(LabspaceError):
    http_status = 401
    exit_code = 3


class PermissionDenied(LabspaceError):
    http_status = 403
    exit_code = 3


class NotFound(LabspaceError):
    http_status = 404
    exit_code = 4


class Conflict(LabspaceError):
    http_status = 409
    exit_code = 5


class QuotaExceeded(Conflict):
    """A start would pass a quota: refused before anything is made. ``quota`` is its
    (scope, name) and ``resource`` what it would pass (cpus, memory, gpus, running), for
    logs and metrics; the message is for the person."""

    def __init__(self, message: str, *, quota: tuple[str, str], resource: str) -> None:
        super().__init__(message)
        self.quota = quota
        self.resource = resource


class TooManyAttempts(LabspaceError):
    http_status = 429
    exit_code = 3

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RuntimeFailure(LabspaceError):
    """The container engine refused or failed an operation."""

    http_status = 502
    exit_code = 6


class StartFailed(RuntimeFailure):
    """A workspace did not reach ``running``; ``logs`` holds the container's last lines and
    ``reason`` why, for metrics (one of workspaces.metrics.START_FAILURE_REASONS)."""

    def __init__(self, message: str, *, logs: str = "", detail: str | None = None,
                 reason: str = "runtime") -> None:
        super().__init__(message, detail=detail)
        self.logs = logs
        self.reason = reason
