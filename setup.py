"""Build hook: compile the media path's hot modules with mypyc (metadata is in pyproject.toml).

The modules listed in ``dsp/compiled.py`` are typed Python (mypy --strict); mypyc turns
them into C extensions, which the interpreter prefers to the ``.py`` files. Set
``VOICEAGENT_PURE_PYTHON=1`` while installing to skip compilation (the code is the same,
only slower); building the extensions needs a C compiler.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def compiled_modules() -> list[str]:
    """`dsp.compiled.COMPILED_MODULES`, read without importing the package."""
    tree = ast.parse((ROOT / "dsp" / "compiled.py").read_text())
    for node in tree.body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "COMPILED_MODULES"
            and node.value is not None
        ):
            names: list[str] = ast.literal_eval(node.value)
            return names
    raise RuntimeError("dsp/compiled.py has no COMPILED_MODULES")


def ext_modules() -> list[object]:
    """The mypyc extensions, or none (pure Python) when disabled or impossible."""
    if os.environ.get("VOICEAGENT_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("setup.py: mypyc not available, installing pure Python", file=sys.stderr)
        return []
    paths = [str(Path(*name.split(".")).with_suffix(".py")) for name in compiled_modules()]
    return list(mypycify(paths, opt_level="3"))


setup(ext_modules=ext_modules())
