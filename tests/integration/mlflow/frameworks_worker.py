"""Framework integrations, unchanged, in a process of their own: scikit-learn and Keras 3 (JAX)
autolog, PyTorch Lightning's ``MLFlowLogger`` and transformers' ``MLflowCallback``
(``report_to=["mlflow"]``) train tiny CPU models while only MLFLOW_TRACKING_URI (and Runstream's
RUNSTREAM_* settings) point MLflow at Runstream. Prints, as JSON, per framework its run id, one
metric's points and some params as the framework itself saw them: the truth the test compares
the read-back with."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")  # before keras is imported: the light backend

import mlflow
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset


def lightning_run(experiment: str, folder: Path) -> dict[str, Any]:
    """A linear model fitted for 2 epochs of 8 batches; the logger logs every step and the
    last checkpoint as an artifact."""
    import lightning
    from lightning.pytorch.loggers import MLFlowLogger

    losses: dict[int, float] = {}

    class Tiny(lightning.LightningModule):
        def __init__(self, lr: float = 0.05, hidden: int = 4) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.layer(x).squeeze(-1), y)
            self.log("train_loss", loss)
            losses[self.global_step] = float(loss.detach())
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])

    torch.manual_seed(0)
    x = torch.randn(64, 4)
    loader = DataLoader(TensorDataset(x, 2 * x[:, 0]), batch_size=8)
    logger = MLFlowLogger(experiment_name=experiment, run_name="lightning", log_model=True)
    trainer = lightning.Trainer(
        max_epochs=2,
        logger=logger,
        log_every_n_steps=1,
        default_root_dir=folder,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(Tiny(), loader)
    assert trainer.global_step == len(losses) == 16
    return {
        "run_id": logger.run_id,
        "key": "train_loss",
        "points": losses,
        "params": {"lr": "0.05", "hidden": "4"},
    }


def keras_run(experiment: str) -> dict[str, Any]:
    """``mlflow.keras.autolog()`` around a 3-epoch ``fit`` of a two-layer model."""
    import keras

    mlflow.set_experiment(experiment)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile("adam", "mse")
    mlflow.keras.autolog()
    try:
        with mlflow.start_run(run_name="keras") as run:
            history = model.fit(x, x[:, 0], epochs=3, batch_size=16, verbose=0)
    finally:
        mlflow.keras.autolog(disable=True)
    return {
        "run_id": run.info.run_id,
        "key": "loss",
        "points": dict(enumerate(history.history["loss"])),
        "params": {"epochs": "3", "batch_size": "16"},
    }


def sklearn_run(experiment: str) -> dict[str, Any]:
    """``mlflow.sklearn.autolog()`` around a ridge regression's ``fit``."""
    from sklearn.linear_model import Ridge

    mlflow.set_experiment(experiment)
    x = np.random.default_rng(1).normal(size=(32, 3))
    y = x @ np.array([1.0, -2.0, 0.5])
    mlflow.sklearn.autolog()
    try:
        with mlflow.start_run(run_name="sklearn") as run:
            model = Ridge(alpha=0.5).fit(x, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    return {
        "run_id": run.info.run_id,
        "key": "training_score",
        "points": {0: float(model.score(x, y))},
        "params": {"alpha": "0.5", "fit_intercept": "True"},
    }


def transformers_run(experiment: str, folder: Path) -> dict[str, Any]:
    """A one-layer BERT of width 8 (built from its config: nothing downloaded) fine-tuned for 2
    epochs of 4 batches through ``Trainer`` with ``report_to=["mlflow"]``."""
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        Trainer,
        TrainingArguments,
    )

    os.environ["MLFLOW_EXPERIMENT_NAME"] = experiment  # how the callback's docs name it
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=32,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        max_position_embeddings=16,
    )
    ids = torch.randint(0, 32, (32, 6))
    data = [{"input_ids": ids[i], "labels": torch.tensor(i % 2)} for i in range(32)]
    args = TrainingArguments(
        output_dir=str(folder / "hf"),
        run_name="transformers",
        num_train_epochs=2,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=["mlflow"],
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=data)
    trainer.train()
    run = mlflow.last_active_run()
    assert run is not None, "the callback started no run"
    losses = {
        int(log["step"]): float(log["loss"]) for log in trainer.state.log_history if "loss" in log
    }
    assert trainer.state.global_step == len(losses) == 8
    return {
        "run_id": run.info.run_id,
        "key": "loss",
        "points": losses,
        "params": {"num_train_epochs": "2", "learning_rate": "0.001", "hidden_size": "8"},
    }


if __name__ == "__main__":
    experiment, folder = sys.argv[1], Path(sys.argv[2])
    result = {
        "sklearn": sklearn_run(f"{experiment}-sklearn"),
        "keras": keras_run(f"{experiment}-keras"),
        "lightning": lightning_run(f"{experiment}-lightning", folder),
        "transformers": transformers_run(f"{experiment}-transformers", folder),
    }
    print(json.dumps(result))
