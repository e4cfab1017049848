"""Training the shared multi-head model, one concern per module (``ecgentry.train.train`` runs them in order).

- :mod:`~ecgentry.training.data`: the training records, their split and classes, one input page (``Example``);
- :mod:`~ecgentry.training.batches`: pages -> model inputs and targets, signal features of the true signal made to
  look digitized, the rows of the Dx fit;
- :mod:`~ecgentry.training.pages`: pages rendered from the records' signals (segmentation targets) and the choice
  of the trace source on rendered validation pages;
- :mod:`~ecgentry.training.loop`: the network's page loop (loss, learning-rate schedule, one epoch);
- :mod:`~ecgentry.training.metrics`: decisions and macro F of Dx probabilities;
- :mod:`~ecgentry.training.dx_fit`: the Dx head's full-batch fit on signal features (digitized training pages,
  calibration, thresholds, rhythm rules) or the page-loop head's thresholds;
- :mod:`~ecgentry.training.resume`: what a checkpoint must agree with to be resumed, simulated kills, diagnostics.

Saving the model folder: :mod:`ecgentry.model_folder`.
"""
