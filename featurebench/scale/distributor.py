"""Cut the candidate list into blocks and keep a pool of Ray actors busy with them.

Each actor holds two blocks at a time (one running, one queued) and no block is sent more
than a window ahead of the oldest unfinished one, so the driver's reorder buffer and the
object store stay bounded however many images there are. A worker process that dies is
restarted by Ray and the block it held is run again on it (``max_restarts`` /
``max_task_retries``); the driver receives each block exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

from featurebench.data.pipeline import DecodeOptions
from featurebench.data.sources import Candidate
from featurebench.data.storage import normalize_root, storage_settings
from featurebench.errors import FeaturebenchError
from featurebench.scale.cluster import connect
from featurebench.scale.resources import check_fits, check_worker_request, worker_memory_bytes
from featurebench.scale.worker import ExtractWorker
from featurebench.scale.writer import in_global_order

#: Batches of candidates per block (one Ray task).
BLOCK_BATCHES = 4
#: Blocks queued on one actor at once.
QUEUE_PER_WORKER = 2
#: Times Ray restarts a dead worker (and retries its block) before the run stops.
MAX_RESTARTS = 3


def block_ranges(start: int, total: int, block_size: int) -> list[tuple[int, int]]:
    """``[a, b)`` candidate ranges of ``block_size`` covering ``[start, total)``."""
    return [(a, min(a + block_size, total)) for a in range(start, total, block_size)]


def start_ray_extractor(opts: Any, model_args: dict[str, Any], root: Path) -> "RayExtractor":
    """The :class:`RayExtractor` for ``ExtractOptions`` ``opts``: model and weights files are passed
    to the workers as absolute paths (their working folder is not the driver's); an object-storage
    ``root`` as its URL (each worker reads the bucket itself)."""
    args = dict(model_args)
    for key in ("model", "weights"):
        if args.get(key) and Path(args[key]).expanduser().exists():
            args[key] = str(Path(args[key]).expanduser().resolve())
    memory = (int(opts.memory_per_worker_mb) << 20 if opts.memory_per_worker_mb is not None
              else worker_memory_bytes(args))
    return RayExtractor(args, str(normalize_root(root)), opts.address, opts.workers, opts.cpus_per_worker,
                        opts.gpus_per_worker, memory, opts.spill_dir, opts.autoscale)


class RayExtractor:
    """The extractor seen by ``run_extract`` when ``--ray`` is on: its model lives in ``workers``
    Ray actors (started here); :meth:`iter_features` replaces the local decode -> forward loop."""

    def __init__(self, model_args: dict[str, Any], root: str, address: str | None = None, workers: int = 2,
                 cpus_per_worker: int = 1, gpus_per_worker: float = 0.0, memory_per_worker: int = 0,
                 spill_dir: str | None = None, autoscale: bool = False):
        check_worker_request(workers, cpus_per_worker, gpus_per_worker)
        self.ray = connect(address, spill_dir)
        self.actors: list[Any] = []
        #: Ray's resource request of each worker (what an autoscaler provisions nodes for).
        self.request = {"num_cpus": cpus_per_worker, "num_gpus": gpus_per_worker or None,
                        "memory": memory_per_worker or None}
        if autoscale:  # ask the autoscaler for every worker now; they start as nodes come up
            from ray.autoscaler.sdk import request_resources

            bundle = {"CPU": cpus_per_worker, **({"GPU": gpus_per_worker} if gpus_per_worker else {}),
                      **({"memory": memory_per_worker} if memory_per_worker else {})}
            request_resources(bundles=[bundle] * workers)
        else:
            nodes = [node["Resources"] for node in self.ray.nodes() if node.get("Alive")]
            check_fits(nodes, workers, cpus_per_worker, gpus_per_worker, memory_per_worker)
        env = storage_settings()
        actor = self.ray.remote(ExtractWorker).options(
            **self.request, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS,
            runtime_env={"env_vars": env} if env else None)
        self.actors = [actor.remote(model_args, root, cpus_per_worker) for _ in range(workers)]
        try:
            described = self._get([a.describe.remote() for a in self.actors], "loading the model")
        except BaseException:
            self.close()
            raise
        first = described[0]
        for other in described[1:]:
            if other["provenance"] != first["provenance"]:
                self.close()
                raise FeaturebenchError("The Ray workers loaded different models (the model files differ "
                                        "between nodes); put one copy on shared storage.")
        self.pids = [d["pid"] for d in described]
        self.provenance: dict[str, Any] = first["provenance"]
        self.input_size: tuple[int, int] = first["input_size"]
        self.batch_size: int = first["batch_size"]
        self.feature_dim: int = first["feature_dim"]
        #: The workers' notices about how the model runs (e.g. bf16 asked for, fp32 running), once each.
        self.notices: tuple[str, ...] = tuple(dict.fromkeys(n for d in described for n in d["notices"]))

    def _get(self, refs: Any, doing: str) -> Any:
        """``ray.get`` with Ray's errors turned into a one-line :class:`FeaturebenchError`."""
        ray = self.ray
        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else None
            if isinstance(cause, FeaturebenchError):
                raise cause from None
            raise FeaturebenchError(f"A Ray worker failed while {doing}: {cause or exc}") from None
        except ray.exceptions.RayActorError as exc:
            raise FeaturebenchError(
                f"A Ray worker died while {doing} (restarted {MAX_RESTARTS} times): "
                f"{str(exc).splitlines()[0][:300]}. Finished blocks are saved; re-run the same command to resume."
            ) from None

    def iter_features(self, items: Sequence[Candidate], decode: DecodeOptions, start: int,
                      batch_size: int, flush_rows: int) -> Iterator[tuple[Any, Any]]:
        """``(batch, features)`` for the candidates ``[start, len(items))``, in the global order.

        Blocks are :data:`BLOCK_BATCHES` batches (at most ``flush_rows``) of candidates."""
        block_size = max(batch_size, min(flush_rows, BLOCK_BATCHES * batch_size))
        return in_global_order(self._completed(items, decode, start, batch_size, block_size))

    def _completed(self, items: Sequence[Candidate], decode: DecodeOptions, start: int, batch_size: int,
                   block_size: int) -> Iterator[tuple[int, list]]:
        """``(block number, block result)`` as blocks finish (any order), numbered from 0."""
        ray = self.ray
        blocks = block_ranges(start, len(items), block_size)
        window = QUEUE_PER_WORKER * len(self.actors)
        free = {i: QUEUE_PER_WORKER for i in range(len(self.actors))}
        running: dict[Any, tuple[int, int]] = {}  # ref -> (block number, actor)
        submitted = 0
        try:
            while submitted < len(blocks) or running:
                oldest = min((b for b, _ in running.values()), default=submitted)
                while submitted < len(blocks) and submitted - oldest < window and any(free.values()):
                    actor = max(free, key=free.get)
                    a, b = blocks[submitted]
                    ref = self.actors[actor].extract_block.remote(
                        a, [(c.path, c.skip_reason) for c in items[a:b]], decode, batch_size)
                    running[ref] = (submitted, actor)
                    free[actor] -= 1
                    submitted += 1
                (ref,), _ = ray.wait(list(running), num_returns=1)
                number, actor = running.pop(ref)
                free[actor] += 1
                a, b = blocks[number]
                yield number, self._get(ref, f"extracting images {a}-{b}")
        finally:
            for ref in running:
                ray.cancel(ref, force=False)
            self.close()

    def close(self) -> None:
        """Stop the workers (idempotent)."""
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        self.actors = []
