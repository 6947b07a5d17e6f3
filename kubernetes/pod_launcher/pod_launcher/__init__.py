"""Users' sessions: the launcher interface, its backends, and the admin CLI ``pod_launcher``.

``make_launcher(config)`` returns the backend the configuration names; see base.Launcher for the interface.
"""
from .base import SESSION_DOWN_HEADER, Launcher, LauncherError, Profile, Progress, SessionInfo, make_launcher

__all__ = ["SESSION_DOWN_HEADER", "Launcher", "LauncherError", "Profile", "Progress", "SessionInfo", "make_launcher"]
