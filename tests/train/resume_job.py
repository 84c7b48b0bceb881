"""A training job for the resumption tests, run as a subprocess: straight, first half (then killed), or resumed.

    python -m tests.train.resume_job straight OUT.npz
    python -m tests.train.resume_job first CHECKPOINT     # saves after HALF steps, prints SAVED, sleeps
    python -m tests.train.resume_job resume CHECKPOINT OUT.npz

The job uses everything that carries state across steps: a shuffled DataLoader drawing from the
global generator, Dropout (global generator), Adam (moments, step counts), a StepLR schedule, and
EarlyStopping (patience counters); STEPS ends mid-epoch and HALF is mid-epoch too.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import glassnet as gn
import glassnet.datasets
from glassnet import nn, optim
from glassnet.train import EarlyStopping, Trainer

STEPS = 37  # 300 samples in batches of 32: 10 batches an epoch, so step 37 is mid-epoch 4
HALF = 15  # mid-epoch 2
EPOCHS = 10


def build() -> tuple[Trainer, gn.data.DataLoader, gn.data.DataLoader]:
    x, y = gn.datasets.load_digits()
    x = (x - 0.3) / 0.4
    train = gn.data.DataLoader(gn.data.TensorDataset(x[:300], y[:300]), batch_size=32, shuffle=True)
    val = gn.data.DataLoader(gn.data.TensorDataset(x[300:500], y[300:500]), batch_size=100)
    gn.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.8)
    trainer = Trainer(
        model,
        optimizer,
        scheduler=scheduler,
        callbacks=[EarlyStopping("val_loss", patience=5)],
        progress="none",
        seed=7,
    )
    return trainer, train, val


def parameters(trainer: Trainer) -> dict[str, np.ndarray]:
    return {name: p.data for name, p in trainer.model.named_parameters()}


def main(mode: str, *paths: str) -> None:
    trainer, train, val = build()
    if mode == "straight":
        trainer.fit(train, val, epochs=EPOCHS, max_steps=STEPS)
        np.savez(paths[0], **parameters(trainer), history_loss=np.array(trainer.history["loss"]))
    elif mode == "first":
        trainer.fit(train, val, epochs=EPOCHS, max_steps=HALF)
        trainer.save_checkpoint(paths[0])
        print("SAVED", trainer.global_step, flush=True)
        time.sleep(600)  # the test kills us here with SIGKILL
    elif mode == "resume":
        trainer.load_checkpoint(paths[0])
        trainer.fit(train, val, epochs=EPOCHS, max_steps=STEPS)
        np.savez(paths[1], **parameters(trainer), history_loss=np.array(trainer.history["loss"]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
