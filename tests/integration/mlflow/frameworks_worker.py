"""Framework integrations, unchanged, in a process of their own: PyTorch Lightning's
``MLFlowLogger`` and transformers' ``MLflowCallback`` (``report_to=["mlflow"]``) train tiny CPU
models while only MLFLOW_TRACKING_URI (and Runstream's RUNSTREAM_* settings) point MLflow at
Runstream. Prints, as JSON, each run's id and what the framework itself says it logged (the
truth the test compares the read-back with)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

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
    return {"run_id": logger.run_id, "train_loss": losses, "steps": trainer.global_step}


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
    import mlflow

    run = mlflow.last_active_run()
    assert run is not None, "the callback started no run"
    losses = {
        int(log["step"]): float(log["loss"]) for log in trainer.state.log_history if "loss" in log
    }
    return {"run_id": run.info.run_id, "loss": losses, "steps": trainer.state.global_step}


if __name__ == "__main__":
    experiment, folder = sys.argv[1], Path(sys.argv[2])
    result = {
        "lightning": lightning_run(f"{experiment}-lightning", folder),
        "transformers": transformers_run(f"{experiment}-transformers", folder),
    }
    print(json.dumps(result))
