"""Where the external conformance corpus lives (see ``shared/conformance/README.md``).

The corpus is read in place and never copied into the repository. By default it sits beside
the checkout (``<repo>/../shared/conformance``, i.e. ``/work/shared/conformance``); set
``VOICEAGENT_CONFORMANCE`` to point somewhere else. Read every file in binary mode: line
endings inside the messages are significant.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "VOICEAGENT_CONFORMANCE"

# tests/conformance.py: parents[0] is tests/, parents[1] the repository root, parents[2] the
# directory that holds both the checkout and shared/.
_DEFAULT_DIR = Path(__file__).absolute().parents[2] / "shared" / "conformance"

CONFORMANCE_DIR: Path = Path(os.environ.get(ENV_VAR) or _DEFAULT_DIR)


def conformance_path(*parts: str, root: Path | None = None) -> Path:
    """Return ``CONFORMANCE_DIR / parts``, failing loudly if the corpus or the path is absent.

    ``root`` replaces ``CONFORMANCE_DIR`` (for testing this helper).
    """
    base = CONFORMANCE_DIR if root is None else root
    if not base.is_dir():
        raise FileNotFoundError(
            f"conformance corpus not found at {base}: set {ENV_VAR} to its location"
        )
    path = base.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"{Path(*parts)} is not in the conformance corpus at {base}")
    return path
