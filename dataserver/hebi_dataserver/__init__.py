"""hebi's HDF5 slicing server, served under /data/ of a user's session.
Entry point: ``hebi_dataserver.app:create_app``."""
