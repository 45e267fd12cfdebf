# SPDX-License-Identifier: GPL-2.0-only
"""ptlab engine: a deterministic model of the arm64 contpte implementation."""

__version__ = "0.1.0"

from engine.python_api import Simulator  # noqa: E402

__all__ = ["Simulator", "__version__"]
