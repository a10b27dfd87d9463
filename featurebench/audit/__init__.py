"""``featurebench audit``: the data problems that silently inflate or deflate a score.
May import fit, store, data and errors; only the CLI imports it.

* :mod:`~featurebench.audit.duplicates` — near-duplicate images across the train/test split;
* :mod:`~featurebench.audit.labels` — label issues by confident learning on out-of-fold probabilities;
* :mod:`~featurebench.audit.outliers` — rows far from every class, and class imbalance;
* :mod:`~featurebench.audit.run` — runs them on a feature file, writes ``audit.json`` and ``exclude_rows.txt``.

Works on the stored features only: no network runs, TensorFlow is never imported.
"""
