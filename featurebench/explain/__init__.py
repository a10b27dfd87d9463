"""Look inside a model: its layers (``inspect``), class-activation heatmaps, activations and filter patterns.

May import every room below it (fit, extractors, data, the training core, finetune's surgery); only the
CLI imports it.

* :mod:`~featurebench.explain.inspection` — the layer table of a registry model or a model file.
* :mod:`~featurebench.explain.cam` — the exact class activation map of a linear classifier on
  pooled conv features (no gradients).
* :mod:`~featurebench.explain.gradcam` — Grad-CAM for every other Keras case.
* :mod:`~featurebench.explain.explainer` — picks the method for a bundle or a Keras model and runs it.
* :mod:`~featurebench.explain.overlay` — heatmap overlays, image grids and size-capped JPEG thumbnails.
* :mod:`~featurebench.explain.activations` — feature-map grids and filter patterns for ``inspect``.

TensorFlow is imported only where a network runs; :mod:`overlay` never imports it.
"""
