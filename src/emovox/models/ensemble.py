"""Ensembles: several members of one registered architecture, probabilities averaged.

Each member is trained on its own (by :func:`emovox.train.pipeline.fit`) with its own seed, so with
its own initialisation, batches, augmentation draws **and validation speakers** (drawn from the
training side with that seed). The ensemble's output is the log of the members' mean probability,
so ``softmax(output)`` is that mean: prediction, bundles (one safetensors file holding every
member) and ONNX export work as for any other model.

A registered ensemble is one line in :data:`emovox.models.MODELS`, e.g.
``"cnn-x2": ensemble_of(CNN, 2)``; ``--param n_members=3`` changes its size.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from emovox.models.base import SERModel


class Ensemble(SERModel):
    """The mean probability of ``n_members`` models of the registered architecture ``member``.

    Args:
        member: the registry name of the members' architecture.
        n_members: how many members.
        member_params: the members' constructor arguments.
    """

    name: ClassVar[str] = "ensemble"
    member_cls: ClassVar[type[SERModel] | None] = None
    """The members' architecture (set by :func:`ensemble_of`)."""
    n_default: ClassVar[int] = 2

    def __init__(
        self,
        n_classes: int,
        in_shape: tuple[int, int],
        member: str | None = None,
        n_members: int | None = None,
        member_params: dict | None = None,
    ) -> None:
        cls = type(self).member_cls
        if cls is None:
            raise ValueError("an ensemble class is made by ensemble_of(model_class, n)")
        member = member or cls.name
        if member != cls.name:
            raise ValueError(f"{self.name} is an ensemble of {cls.name!r}, not {member!r}")
        n_members = int(n_members if n_members is not None else type(self).n_default)
        if n_members < 1:
            raise ValueError("n_members must be at least 1")
        member_params = dict(member_params or {})
        super().__init__(
            n_classes, in_shape, member=member, n_members=n_members, member_params=member_params
        )
        self.member_name = member
        self.member_params = member_params
        try:
            self.members = nn.ModuleList(
                cls(n_classes, in_shape, **member_params) for _ in range(n_members)
            )
        except TypeError as exc:
            raise ValueError(f"bad parameters for the members of {self.name!r}: {exc}") from exc

    def trained_members(self) -> list[tuple[str, dict, nn.Module]]:
        """Every member, trained on its own (seed ``+ k``) and loaded into ``members[k]``."""
        return [(self.member_name, self.member_params, m) for m in self.members]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        probs = torch.stack([m(x, mask).softmax(dim=-1) for m in self.members]).mean(dim=0)
        return torch.log(probs.clamp_min(1e-12))


def ensemble_of(model_cls: type[SERModel], n_members: int = 2) -> type[Ensemble]:
    """A registrable ensemble class of ``n_members`` ``model_cls`` models, which takes that
    model's feature and training settings as its own."""
    return type(
        f"{model_cls.__name__}Ensemble{n_members}",
        (Ensemble,),
        {
            "name": f"{model_cls.name}-x{n_members}",
            "member_cls": model_cls,
            "n_default": n_members,
            "default_feature": dict(model_cls.default_feature),
            "default_training": dict(model_cls.default_training),
            "__doc__": f"{n_members} ``{model_cls.name}`` models, probabilities averaged.",
        },
    )
