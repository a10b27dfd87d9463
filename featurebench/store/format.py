"""The feature-file format (version 1), readable with plain h5py or pandas.

Datasets
    ``features``      (N, D) float32 (float16 opt-in), chunked by rows
    ``labels``        (N,) int32 index into ``label_names``
    ``label_names``   (C,) UTF-8 strings
    ``paths``         (N,) UTF-8, relative to the source root (absolute if outside it)
    ``skipped/path``, ``skipped/reason``   every candidate image that could not be used
    ``ignored/path``, ``ignored/reason``   files not taken as images (extension, hidden)
    ``duplicates/row``, ``duplicates/path``, ``duplicates/first_row``, ``duplicates/first_path``
                      rows whose file has the same bytes (BLAKE2b) as an earlier row, and
                      that earlier row. Duplicates are kept as rows, never dropped; drop them
                      yourself with ``np.delete(features, h5["duplicates/row"][()], axis=0)``.
                      Attributes ``n_duplicates`` and ``duplicates_checked`` (False when the
                      rows were written without file contents, e.g. ``write_feature_arrays``).
    ``row_digest``    (N, 16) uint8 BLAKE2b of each row's file: shard files only
                      (``extract --shards``), for ``featurebench merge``; attributes
                      ``shard_index``, ``shard_count``, ``shard_of``, ``shard_start``.

Attribute ``identity`` (JSON text): what the file is, for every command that joins it with
another artefact (source root, content digest of the rows' files, rows, split, model); see
:mod:`featurebench.store.identity`. A ``merge --virtual`` file also records ``virtual_sources``
(each shard's relative path, rows, width and identity digest), checked whenever it is opened.

Strings are UTF-8; a file name that is not valid UTF-8 is stored with ``\\xNN`` escapes
for its undecodable bytes (``extract`` warns about it).

Rows are in the seeded shuffled order; ``split_index`` = int(N * train_fraction):
rows ``[:split_index]`` are the train slice, ``[split_index:]`` the test slice.
Attributes: see :data:`REQUIRED_ATTRS` and the writer.
"""

FORMAT_NAME = "featurebench-features"
FORMAT_VERSION = 1

FEATURES = "features"
LABELS = "labels"
LABEL_NAMES = "label_names"
PATHS = "paths"
SKIPPED = "skipped"
IGNORED = "ignored"
DUPLICATES = "duplicates"
ROW_DIGEST = "row_digest"

#: Attributes every complete feature file carries.
REQUIRED_ATTRS = (
    "format", "format_version", "featurebench_version", "complete", "created",
    "model", "layer", "pool", "input_size", "resize", "preprocessing", "weights", "weights_sha256",
    "seed", "train_fraction", "split_index", "n_rows", "n_skipped", "n_ignored", "n_candidates",
    "feature_dim", "source", "source_kind", "dataset",
)

#: Suffix of the folder that holds an extraction in progress (the resumable journal).
PARTIAL_SUFFIX = ".partial"
