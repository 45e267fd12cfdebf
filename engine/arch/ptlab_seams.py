# SPDX-License-Identifier: GPL-2.0-only
"""ptlab-owned seam: the fold policy (engine.policy).

While a policy is installed it stands in for pgtable.h's contpte_try_fold()
in set_ptes(nr == 1); the kernel-named contpte_try_fold() stays exactly the
kernel's heuristic and never tests for a policy. (The other ptlab-only
pieces of the arch layer: engine.arch.ptlab_race, engine.arch.ptlab_fast.)
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

from engine.arch.api import PtepApi
from engine.state.mmstruct import MMStruct

if TYPE_CHECKING:  # (engine.policy imports the arch layer: for annotations only)
    from engine.policy import FoldPolicy


class FoldPolicySeam(PtepApi):
    _fold_policy: FoldPolicy | None = None

    @property
    def fold_policy(self) -> FoldPolicy | None:
        """The fold policy in force; None is the profile's own contpte_try_fold()."""
        return self._fold_policy

    @fold_policy.setter
    def fold_policy(self, policy: FoldPolicy | None) -> None:
        # Installing a policy shadows the profile's contpte_try_fold() on this
        # instance, so the kernel's function never tests for a policy.
        # (setattr/delattr, not self.__dict__: touching __dict__ makes CPython
        # build the instance's dict, which slows every later self.<attr> of
        # the arch layer by a few percent.)
        self._fold_policy = policy
        if policy is not None:
            self.contpte_try_fold = self.policy_try_fold
        else:
            # (AttributeError: no policy was installed, the class's version is in force)
            with suppress(AttributeError):
                del self.contpte_try_fold

    def policy_try_fold(self, mm: MMStruct, addr: int, pte: int) -> None:
        """contpte_try_fold() while a policy is installed: the policy decides
        whether to try, __contpte_try_fold() decides whether it folds."""
        policy = self._fold_policy
        if policy is not None and policy.should_try_fold(self, mm, addr, pte):  # type: ignore[arg-type]
            self.contpte_try_fold_slow(mm, addr, pte)
