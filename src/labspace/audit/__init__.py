"""The audit log: who did what, to what, when and from where.

``AuditLog.record`` is called by the hub's services and web handlers; it never raises into
the caller's path (a failed write is logged). ``query`` and ``export_lines`` serve the admin
page, the API and ``labspace audit``; ``prune_forever`` enforces ``audit_retention_days``.
"""

from labspace.audit.log import AuditEntry, AuditLog, AuditQuery
from labspace.audit.moments import BadMoment, parse_moment

__all__ = ["AuditEntry", "AuditLog", "AuditQuery", "BadMoment", "parse_moment"]
