"""Who people are: accounts, passwords, session and API tokens, and pluggable authenticators."""

from labspace.identity.authenticator import Authenticator, LocalAuthenticator, login
from labspace.identity.tokens import SESSION_COOKIE, issue_token, resolve_token, revoke_token
from labspace.identity.users import UserService

__all__ = [
    "SESSION_COOKIE",
    "Authenticator",
    "LocalAuthenticator",
    "UserService",
    "issue_token",
    "login",
    "resolve_token",
    "revoke_token",
]
