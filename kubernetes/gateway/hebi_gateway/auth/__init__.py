"""The gateway's login methods behind one seam (base.Authenticator), chosen by gateway.auth.method."""
from __future__ import annotations

from hebi_common.config import HebiConfig

from ..accounts import UsersFile
from ..logins import LoginStore
from ..throttle import LoginThrottle
from .base import Authenticator, LoginRefused

__all__ = ["Authenticator", "LoginRefused", "make_authenticator"]


def make_authenticator(config: HebiConfig, logins: LoginStore, users: UsersFile, throttle: LoginThrottle) -> Authenticator:
    method = config.gateway.auth.method
    if method == "oidc":
        from .oidc import OidcAuthenticator  # authlib is imported only where OIDC is used
        return OidcAuthenticator(config, logins)
    if method == "trusted_header":
        from .trusted_header import TrustedHeaderAuthenticator
        return TrustedHeaderAuthenticator(config, logins)
    from .local import LocalAuthenticator
    return LocalAuthenticator(config, logins, users, throttle)
