"""Savu's preview syntax as the runner applies it: the one grammar of ``hebi_common.savu.preview``,
so a preview the editor accepts selects here exactly what it means there."""
from __future__ import annotations

from hebi_common.savu.preview import PreviewError
from hebi_common.savu.preview import indices as preview_indices

__all__ = ["PreviewError", "preview_indices"]
