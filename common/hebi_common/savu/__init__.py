"""Savu's facts in one place: the plugin catalogue and (later) the process-list format.

The API and the runner both use this package rather than each reading Savu's files their own way.
"""
