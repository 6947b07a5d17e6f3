"""Savu jobs: preview and full runs through a cluster backend, recorded in the user's job registry.

Modules: ``states`` (a job's states, one enum), ``backend`` (the cluster backend interface and the
values it speaks in), ``local``, ``drmaa_backend`` and ``slurm`` (the backends), ``local_shim`` (the
supervisor of one local job), ``registry`` (SQLite, in the user's state folder), ``savu`` (building a
Savu job: checks, preview copy, command, progress, why a run failed), ``service`` (submit/poll/cancel
tying them together) and ``routes`` (the REST blueprint).

This file imports nothing, so that ``python -m hebi_api.jobs.local_shim`` starts fast.
"""
