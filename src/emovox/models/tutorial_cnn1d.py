"""``tutorial-cnn1d``: the classic Keras tutorial's network, layer by layer.

Conv1D 256 (kernel 5, same) ReLU, Conv1D 128 (5) ReLU, Dropout 0.1, MaxPool 8, Conv1D 128 (5) ReLU,
Conv1D 128 (5) ReLU, Flatten, Dense to the classes (softmax at prediction); Adam, batch 16.
Keras's Glorot-uniform weights and zero biases are used. The input is the 216-value
``tutorial-mfcc`` sequence.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from emovox.models.base import SERModel


class TutorialCNN1D(SERModel):
    name = "tutorial-cnn1d"
    default_feature: ClassVar[dict] = {"name": "tutorial-mfcc"}
    default_training: ClassVar[dict] = {
        "optimizer": "adam",
        "lr": 1e-3,
        "weight_decay": 0.0,
        "schedule": "constant",
        "batch_size": 16,
        "epochs": 40,
        "patience": 10,
        "crop_seconds": None,
        "specaugment": False,
        "mixup": 0.0,
    }

    def __init__(self, n_classes: int, in_shape: tuple[int, int], length: int = 216) -> None:
        super().__init__(n_classes, in_shape, length=length)
        channels = in_shape[0] * in_shape[1]
        self.features = nn.Sequential(
            nn.Conv1d(channels, 256, 5, padding="same"),
            nn.ReLU(),
            nn.Conv1d(256, 128, 5, padding="same"),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.MaxPool1d(8),
            nn.Conv1d(128, 128, 5, padding="same"),
            nn.ReLU(),
            nn.Conv1d(128, 128, 5, padding="same"),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.length = length
        self.classifier = nn.Linear(128 * (length // 8), n_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b = x.shape[0]
        x = x.reshape(b, -1, x.shape[-1])
        if x.shape[-1] != self.length:  # the Flatten layer fixes the length: crop or zero-pad
            x = nn.functional.pad(x, (0, max(0, self.length - x.shape[-1])))[..., : self.length]
        return self.classifier(self.features(x))
