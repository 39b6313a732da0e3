"""Training: the generic fit loop, checkpoints, and data parallelism."""

from deepgm.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from deepgm.training.trainer import Trainable, Trainer, TrainerConfig, TrainingInterrupted, TrainingStopped

__all__ = ["Trainer", "TrainerConfig", "Trainable", "TrainingStopped", "TrainingInterrupted", "save_checkpoint",
           "load_checkpoint", "latest_checkpoint"]
