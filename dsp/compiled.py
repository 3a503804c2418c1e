"""Which modules of the media path are compiled with mypyc, and the guard against stale builds.

Theory of operation
-------------------
`pip install -e .` compiles the modules in `COMPILED_MODULES` with mypyc (``setup.py``): the
same typed Python source becomes C extension modules, about twice as fast on the per-packet
path (native attribute access and calls, no interpreter dispatch). The ``.py`` files stay
the only source; the extensions sit next to them, and Python imports an extension in
preference to a ``.py`` of the same name.

That preference is a trap once a ``.py`` is edited: the old compiled code would keep
running. So, when the ``dsp`` package is imported (before any compiled module can be),
`ensure_current` compares each compiled module's extension with its source. If any source is
newer than its extension, or ``VOICEAGENT_PURE_PYTHON`` is set in the environment (to
profile with py-spy, which cannot see inside compiled code, or to debug), every module of
the list is imported from its ``.py`` instead, all of them together: mypyc modules call each
other directly, so a mix would still run the stale code. A tree without extensions (no
compiler, or ``VOICEAGENT_PURE_PYTHON`` set at install time) simply runs the source.

This is the one import hook of the code base, and it changes nothing but where these
modules' code is loaded from; it is installed at most once.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Final

# The per-packet and per-frame path of every call (setup.py compiles exactly these).
COMPILED_MODULES: Final = (
    "dsp.bargein",
    "dsp.dtmf",
    "dsp.echo",
    "dsp.endpoint",
    "dsp.level",
    "dsp.plc",
    "dsp.vad",
    "rtp.channel",
    "rtp.engine",
    "rtp.frames",
    "rtp.jitter",
    "rtp.latching",
    "rtp.pacer",
    "rtp.playout_delay",
    "rtp.packet",
    "rtp.seq",
    "rtp.session",
    "rtp.stats",
    "rtp.tick",
)
PURE_PYTHON_ENV: Final = "VOICEAGENT_PURE_PYTHON"
_ROOT: Final = Path(__file__).resolve().parent.parent


def _source(name: str, root: Path = _ROOT) -> Path:
    return root.joinpath(*name.split(".")).with_suffix(".py")


def _extensions(source: Path) -> list[Path]:
    return [
        source.with_suffix(suffix)
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
        if source.with_suffix(suffix).exists()
    ]


def stale_modules(root: Path = _ROOT) -> list[str]:
    """Compiled modules (under ``root``) whose source changed after they were compiled."""
    stale = []
    for name in COMPILED_MODULES:
        source = _source(name, root)
        for extension in _extensions(source):
            if source.exists() and source.stat().st_mtime > extension.stat().st_mtime:
                stale.append(name)
                break
    return stale


def is_compiled(module: ModuleType) -> bool:
    """Whether ``module`` was loaded from a compiled extension (for reports and benchmarks)."""
    return not str(getattr(module, "__file__", "")).endswith(".py")


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Loads the modules of `COMPILED_MODULES` from their ``.py`` files."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED_MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, _source(fullname))


def ensure_current() -> str | None:
    """Run the source instead of the extensions if any is stale (or the environment says so).

    Returns:
        Why the source runs (None when the extensions, if any, are used).
    """
    if any(isinstance(finder, _SourceFinder) for finder in sys.meta_path):
        return "source finder already installed"
    if os.environ.get(PURE_PYTHON_ENV):
        reason: str | None = f"{PURE_PYTHON_ENV} is set"
    else:
        stale = stale_modules()
        reason = f"edited since compiled: {', '.join(stale)}" if stale else None
    if reason is not None:
        sys.meta_path.insert(0, _SourceFinder())
    return reason
