"""hebi's Savu REST API, served under /api/ of a user's session. Entry point: ``hebi_api.app:create_app``."""
