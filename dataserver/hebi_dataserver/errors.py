"""The dataserver's kind of hebi's one user error (hebi_common.errors): its body carries ``message``,
the key h5web's H5GroveProvider reads, beside ``error``."""
from __future__ import annotations

from hebi_common.errors import UserError


class DataError(UserError):
    """A dataset, selection or file the dataserver cannot serve as asked."""
