"""An exponential moving average of a model's weights."""

from __future__ import annotations

import torch
from torch import nn


class WeightEMA:
    """An exponential moving average of a model's weights.

    After every optimiser step, each floating-point parameter's average moves towards it,
    ``avg = d * avg + (1 - d) * param``, with ``d = min(decay, (1 + n) / (10 + n))`` at the
    ``n``-th update (so the first updates do not keep the random initial weights for long);
    buffers (batch-norm statistics, counters) are copied as they are. :attr:`state` is a full
    ``state_dict`` of the model, ready for ``load_state_dict``.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.updates = 0
        self.params = {name for name, _ in model.named_parameters()}
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        """The decay the next :meth:`update` uses."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards ``model``'s current weights."""
        d = self.current_decay()
        for k, v in model.state_dict().items():
            avg = self.state[k]
            if k in self.params and v.is_floating_point():
                avg.mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                avg.copy_(v)
        self.updates += 1

    def load(self, state: dict[str, torch.Tensor], updates: int) -> None:
        """Restore an average saved from :attr:`state` after ``updates`` updates."""
        missing = set(self.state) - set(state)
        if missing:
            raise ValueError(f"the saved weight average lacks {sorted(missing)[:5]}")
        self.state = {
            k: state[k].detach().clone().to(self.state[k].device, self.state[k].dtype)
            for k in self.state
        }
        self.updates = updates
