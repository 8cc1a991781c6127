"""Who people are: accounts, passwords, session and API tokens, and pluggable authenticators.

Public modules: ``users`` (UserService), ``authenticator`` (Authenticator protocol, login
pipeline), ``tokens`` (issue/resolve/revoke), ``credentials`` (the cookie name and token
digests, free of heavy imports so the proxy can use them), ``passwords`` (argon2).
"""
