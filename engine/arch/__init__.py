# SPDX-License-Identifier: GPL-2.0-only
"""The arm64 arch layer: raw helpers, TLB maintenance, contpte.c and the ptep API."""

from engine.arch.base import ArchError, MissingEntryPoint
from engine.arch.profiles import DEFAULT_KERNEL, PROFILES, KernelProfile, get_profile
from engine.arch.ptep import Arch
from engine.arch.raw import CYDP_CLEAR_DIRTY, CYDP_CLEAR_YOUNG

__all__ = ["Arch", "ArchError", "MissingEntryPoint", "KernelProfile", "PROFILES", "DEFAULT_KERNEL",
           "get_profile", "CYDP_CLEAR_YOUNG", "CYDP_CLEAR_DIRTY"]
