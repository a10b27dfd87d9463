"""Scale out: extraction across a Ray cluster, shards + merge for other schedulers, and the
extractor x classifier sweep as independent tasks. Same results as one machine.
May import fit, extractors, store, data, outputs, text and errors; ``extract`` imports it.

One file per stage (the shape of clip-retrieval's ``clip_inference``):

* :mod:`.cluster` — connect to (or start) a Ray cluster; Ray is the optional ``[ray]`` extra
* :mod:`.reader` — a block of candidates -> decoded, batched images (the local decode path)
* :mod:`.worker` — the Ray actor: loads the model once, turns blocks into feature rows
* :mod:`.distributor` — cuts the candidate list into blocks and keeps the actors busy
* :mod:`.writer` — hands the blocks' rows back in the global order to ``extract``'s journal
* :mod:`.shards` — ``extract --shards N --shard-index I``: one slice of the global order
* :mod:`.merge` — ``featurebench merge``: shard files -> the one-machine file (copy or virtual)
* :mod:`.sweep` — ``featurebench sweep``: one ``fit`` per (feature file, classifier) cell
* :mod:`.commands` — the CLI commands (registered in ``featurebench.cli``)

Nothing here imports Ray, TensorFlow or scikit-learn at import time.
"""
