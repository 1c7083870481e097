"""Where ``functionals_fusion.py`` writes its results, kept apart from that script so that the
table scripts that read them (``loco_table.py``) name the same files without importing torch."""

from __future__ import annotations

from collections.abc import Sequence


def result_name(run_name: str, views: Sequence[str]) -> str:
    """The default result file name of a fusion of run ``run_name`` reading ``views``."""
    suffix = "" if list(views) == ["functionals"] else "_" + "+".join(views)
    return f"functionals_fusion{suffix}_{run_name}.json"
