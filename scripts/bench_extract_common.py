"""What the extraction benchmarks share: generated images, the subprocess workers, the table header and the
command line. Not a benchmark itself; run one of:

    python scripts/bench_extract_throughput.py   # classic script vs extract vs model-only -> results/bench_extract_<class>.md
    python scripts/bench_extract_levers.py       # every lever, image size, HDF5 layout    -> results/bench_extract_levers_<class>.md
    python scripts/bench_extract_fidelity.py     # engines / fast paths vs the reference   -> results/bench_extract_fidelity_<class>.md
    python scripts/bench_extract_rss.py          # peak memory at 1,000 vs 10,000 images  -> results/bench_extract_rss_<class>.md
    python scripts/bench_extract_decode.py       # JPEG decoders, decode share of CPU      -> results/bench_extract_decode_<class>.md
    python scripts/bench_extract_int8.py         # int8 vs fp32 speed and accuracy         -> results/bench_extract_int8_<class>.md

or ``python scripts/bench_extract.py [--levers|--fidelity|--rss-check|--decode|--int8]``, the command lines
that results/ records. Each writes one Markdown table under ``results/``, named by the machine's CPU class
(``featurebench.extractors.cpu.cpu_class``: amx, avx512-vnni, avx512, avx2), so tables from different
machines sit side by side instead of overwriting each other. Every header records the CPU model, its ISA
flags (AVX2, AVX-512, VNNI, BF16, AMX) and class; every ``extract`` row the engine and precision that
really ran.

Images: ``--images N`` (default 300) realistic JPEGs of mixed sizes (long side 300-1200 px,
quality 85-95, some progressive) cut from the real photos in ``../shared/datasets/`` (random
crops, resized, light sensor noise; synthetic scenes when ../shared is absent), plus the real
photos in ``../shared/images/samples/``, written to a temporary folder.

Each variant runs in its own subprocess (this file with ``--worker SPEC``: clean peak RSS). The
machine is shared with other jobs: the load average is recorded before every model, and
``--repeat R`` runs every variant R times (interleaved) and keeps each one's best.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORAL = SHARED / "models" / "coral" / "mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
MODELS = ["mobilenet", "resnet50", "vgg16", "coral"]
#: keras.applications module of each registry model (the classic script's preprocess_input).
KERAS_MODULES = {"mobilenet": "mobilenet", "resnet50": "resnet50", "vgg16": "vgg16",
                 "mobilenetv2": "mobilenet_v2", "vgg19": "vgg19", "resnet50v2": "resnet_v2"}
#: Batch sizes tried for the model-only limit.
SWEEP = {"vgg16": (8, 16, 32), "default": (8, 16, 32, 64)}

sys.path.insert(0, str(REPO))


# --------------------------------------------------------------------------- images
def source_photos() -> list[Path]:
    roots = [SHARED / "datasets" / "flowers17", SHARED / "datasets" / "dogs-vs-cats"]
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*.jpg"))


def _synthetic_scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    import cv2

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(40, 200, 3)
    image = base + rng.uniform(-60, 60, 3) * (xx / width)[..., None] + rng.uniform(-60, 60, 3) * (yy / height)[..., None]
    image = image.astype(np.float32)
    for _ in range(int(rng.integers(5, 15))):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(10, width // 3)), int(rng.integers(10, height // 3)))
        cv2.ellipse(image, center, axes, float(rng.uniform(0, 180)), 0, 360, tuple(float(v) for v in rng.uniform(0, 255, 3)), -1)
    image = cv2.GaussianBlur(image, (0, 0), 2.0)
    return np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)


def make_images(folder: Path, n: int, seed: int = 0, sizes: tuple[int, int] = (300, 1200)) -> Path:
    """``n`` realistic JPEGs in class folders under ``folder`` (+ the sample photos); returns ``folder``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = source_photos()
    for i in range(n):
        long_side = int(rng.integers(sizes[0], sizes[1] + 1))
        aspect = float(rng.uniform(0.6, 1.0))
        if photos:
            source = photos[int(rng.integers(len(photos)))]
            cls = "flower" if "flowers17" in source.parts else source.name.split(".")[0]
            img = Image.open(source).convert("RGB")
            w, h = img.size
            cw, ch = int(w * rng.uniform(0.75, 1.0)), int(h * rng.uniform(0.75, 1.0))
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            img = img.crop((left, top, left + cw, top + ch))
        else:
            cls = f"scene{i % 3}"
            img = Image.fromarray(_synthetic_scene(rng, 512, 512))
        size = (long_side, int(long_side * aspect))
        if rng.random() < 0.35:
            size = size[::-1]
        array = np.asarray(img.resize(size, Image.BICUBIC), dtype=np.float32)
        # Upscaled photos are too smooth to decode like camera images: add light sensor noise.
        array = np.clip(array + rng.normal(0, 2.5, array.shape), 0, 255).astype(np.uint8)
        out = folder / cls / f"img_{i:05d}.jpg"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(out, quality=int(rng.integers(85, 96)), progressive=bool(rng.random() < 0.15))
    samples = SHARED / "images" / "samples"
    if samples.is_dir():
        for path in sorted(samples.iterdir()):
            if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"):
                (folder / "samples").mkdir(exist_ok=True)
                shutil.copy(path, folder / "samples" / path.name)
    return folder


def make_small_images(folder: Path, n: int, seed: int = 1) -> Path:
    """``n`` distinct small JPEGs (64-160 px) for the memory check."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = _synthetic_scene(rng, 160, 160)
    for i in range(n):
        h, w = int(rng.integers(64, 161)), int(rng.integers(64, 161))
        array = np.roll(base, (i * 7) % 160, axis=int(i % 2))[:h, :w].copy()
        array[i % h, :, i % 3] = i % 251  # every file different (no duplicate rows)
        out = folder / f"c{i % 4}" / f"s_{i:06d}.jpg"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(out, quality=90)
    return folder


def image_paths(folder: Path) -> list[Path]:
    exts = {".jpg", ".jpeg", ".png", ".bmp"}
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in exts)


# --------------------------------------------------------------------------- workers (subprocess side)
def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _model_arg(model: str) -> str:
    return str(CORAL) if model == "coral" else model


def _build(model: str, spec: dict):
    from featurebench.extractors import load_extractor

    kwargs = {"weights": "imagenet" if model == "coral" else spec.get("weights", "none")}
    for key in ("precision", "engine"):
        if spec.get(key):
            kwargs[key] = spec[key]
    if kwargs.get("precision") in ("int8", "auto"):  # calibrated on the data folder, as extract does
        from featurebench.extract import ExtractOptions, _load_extractor

        opts = ExtractOptions(source=spec["data"], output="unused.h5", model=_model_arg(model), **kwargs)
        return _load_extractor(opts, opts.list_images(opts.source))[0]
    return load_extractor(_model_arg(model), **kwargs)


def worker_classic(spec: dict) -> dict:
    """The book-style loop: decode in Python per batch of 32, predict, buffered float64 h5py writes."""
    import cv2
    import h5py

    model, dtype, batch = spec["model"], spec["dtype"], 32
    paths = image_paths(Path(spec["data"]))
    labels = [p.parent.name for p in paths]
    names = sorted(set(labels))
    extractor = _build(model, {**spec, "engine": None if model == "coral" else "tensorflow"})
    height, width = extractor.input_size
    if model == "coral":
        from ai_edge_litert.interpreter import Interpreter

        from featurebench.extractors.tflite_backend import _dequantize

        interp = Interpreter(model_path=str(CORAL))  # as a classic script makes it: LiteRT's defaults
        inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]

        def predict(x):
            if interp.get_input_details()[0]["shape"][0] != len(x):
                interp.resize_tensor_input(inp["index"], [len(x), height, width, 3])
                interp.allocate_tensors()
            interp.set_tensor(inp["index"], x.astype(np.uint8))
            interp.invoke()
            return _dequantize(interp.get_tensor(outp["index"]), outp)

        def preprocess(x):
            return x
    else:
        import importlib

        from keras.utils import img_to_array

        module = importlib.import_module(f"keras.applications.{KERAS_MODULES[model]}")
        preprocess = module.preprocess_input
        keras_model = extractor.model

        def predict(x):
            return keras_model.predict(x, batch_size=batch, verbose=0)
    predict(preprocess(np.zeros((batch, height, width, 3), np.float32)))  # warm-up (tracing) excluded
    out = Path(spec["out"])
    started, cpu = time.perf_counter(), time.process_time()
    with h5py.File(out, "w") as db:
        features = None
        buffer: list[np.ndarray] = []
        written = 0
        for start in range(0, len(paths), batch):
            batch_images = []
            for path in paths[start:start + batch]:
                image = cv2.imread(str(path))
                image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
                image = cv2.resize(image, (width, height))
                if model == "coral":
                    batch_images.append(np.expand_dims(image, 0))
                else:
                    batch_images.append(np.expand_dims(img_to_array(image), 0))
            x = preprocess(np.vstack(batch_images))
            rows = predict(x).reshape(len(x), -1)
            if features is None:
                features = db.create_dataset("features", (len(paths), rows.shape[1]), dtype=dtype)
            buffer.extend(rows)
            if len(buffer) >= 1000:
                features[written:written + len(buffer)] = buffer
                written, buffer = written + len(buffer), []
        if buffer:
            features[written:written + len(buffer)] = buffer
        db.create_dataset("labels", data=np.array([names.index(lab) for lab in labels]))
        db.create_dataset("label_names", data=np.array(names, dtype=h5py.string_dtype()))
    seconds = time.perf_counter() - started
    with h5py.File(out) as db:
        feature_bytes = db["features"].id.get_storage_size()
    return {"n": len(paths), "seconds": seconds, "img_s": len(paths) / seconds, "bytes": out.stat().st_size,
            "feature_bytes": feature_bytes,
            "cpu_ms": 1e3 * (time.process_time() - cpu) / len(paths)}


def worker_extract(spec: dict) -> dict:
    """``run_extract`` with defaults (plus ``opts`` overrides for the lever runs)."""
    import featurebench.extract as extract_module
    from featurebench.extract import ExtractOptions, run_extract

    build = {"seconds": 0.0, "cpu": 0.0}
    original = extract_module._load_extractor  # noqa: SLF001 - build (and int8 calibration) excluded

    def load_and_warm(opts, listing):
        started, cpu = time.perf_counter(), time.process_time()
        loaded = original(opts, listing)
        bs = opts.batch_size or loaded[0].batch_size
        loaded[0].extract(np.zeros((bs, *loaded[0].input_size, 3), np.uint8))  # tracing, excluded as in (1)
        build["seconds"], build["cpu"] = time.perf_counter() - started, time.process_time() - cpu
        return loaded

    extract_module._load_extractor = load_and_warm  # noqa: SLF001
    if spec.get("lookahead"):
        import featurebench.data.pipeline as pipeline

        iter_decoded = pipeline.iter_decoded
        extract_module.iter_decoded = lambda *a, **k: iter_decoded(*a, **{**k, "lookahead": spec["lookahead"]})
    model = spec["model"]
    # fp32 unless the row asks for another precision (extract's default is auto since issue 28).
    opts = {"weights": "imagenet" if model == "coral" else spec.get("weights", "none"), "precision": "fp32",
            **spec.get("opts", {})}
    out = Path(spec["out"])
    started, cpu = time.perf_counter(), time.process_time()
    summary = run_extract(ExtractOptions(source=spec["data"], output=str(out), model=_model_arg(model), force=True,
                                         command="bench_extract", **opts))
    seconds = time.perf_counter() - started - build["seconds"]
    cpu = time.process_time() - cpu - build["cpu"]
    result = {"n": summary.n_rows, "seconds": seconds, "img_s": summary.n_rows / seconds, "bytes": out.stat().st_size,
              "loop_img_s": summary.images_per_second, "cpu_ms": 1e3 * cpu / summary.n_rows}
    import h5py

    with h5py.File(out) as h5:
        result["feature_bytes"] = h5["features"].id.get_storage_size()
        result["ran"] = f"{h5.attrs.get('engine', h5.attrs.get('backend', '?'))} {h5.attrs.get('precision', '?')}"
    result["build_s"] = build["seconds"]
    if spec.get("float16_copy"):
        from featurebench.store.writer import write_feature_arrays

        rss_before = _peak_rss_mib()
        with h5py.File(out) as h5:
            arrays = (h5["features"][()], h5["labels"][()], [s.decode() for s in h5["label_names"][()]],
                      [s.decode() for s in h5["paths"][()]])
        half = write_feature_arrays(out.with_name(out.stem + "-f16.h5"), *arrays, dtype="float16")
        result["bytes_f16"] = half.stat().st_size
        with h5py.File(half) as h5:
            result["feature_bytes_f16"] = h5["features"].id.get_storage_size()
        result["rss_mib"] = rss_before  # the float16 copy's arrays are not extraction memory
    return result


def worker_model(spec: dict) -> dict:
    """Forward pass alone on preloaded, preprocessed tensors; best batch size of the sweep."""
    from featurebench.data.pipeline import DecodeOptions, load_image

    model = spec["model"]
    extractor = _build(model, spec)
    paths = image_paths(Path(spec["data"]))[:64]
    images = np.stack([load_image(p, DecodeOptions(extractor.input_size)) for p in paths])
    sweep = spec.get("sweep") or SWEEP.get(model, SWEEP["default"])
    min_images = spec.get("min_images", 64)
    def forward(x):
        if spec.get("call") == "predict":
            return extractor.model.predict(x, batch_size=len(x), verbose=0)
        return extractor._forward(x)  # noqa: SLF001 - the compiled call alone (OpenVINO / tf.function / LiteRT)
    rates, cpus = {}, {}
    for bs in sweep:
        x = np.resize(images, (bs, *images.shape[1:]))
        # prepare: preprocessing plus the engine's input conversion (a tf.Tensor for TensorFlow).
        x = extractor.preprocess(x) if spec.get("call") == "predict" else extractor.prepare(x)
        forward(x)  # warm-up / tracing
        steps = max(2, -(-min_images // bs))
        best = 0.0
        for _ in range(2):
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                forward(x)
            rate = steps * bs / (time.perf_counter() - started)
            if rate > best:
                best, cpus[bs] = rate, 1e3 * (time.process_time() - cpu) / (steps * bs)
        rates[bs] = best
    best_bs = max(rates, key=rates.get)
    return {"img_s": rates[best_bs], "batch": best_bs, "cpu_ms": cpus[best_bs],
            "sweep": {str(k): round(v, 1) for k, v in rates.items()}}


def _patch_levers(spec: dict) -> None:
    """Apply the lever settings that have no ExtractOptions field (thread counts, priorities, decoder)."""
    if spec.get("no_simplejpeg"):
        import featurebench.data.decode as decode_module

        decode_module._decode_jpeg_simplejpeg = lambda data, color: None  # noqa: SLF001 - OpenCV decodes
    if spec.get("tflite_threads") is not None:
        import featurebench.extractors.tflite_backend as tflite_backend

        interpreter = tflite_backend._interpreter  # noqa: SLF001
        forced = int(spec["tflite_threads"]) or None
        tflite_backend._interpreter = lambda path, preserve_all, threads=None, **_: interpreter(path, preserve_all, forced)
    if spec.get("prefetch") is not None:
        import featurebench.extract as extract_module

        extract_module.PREFETCH_BATCHES = int(spec["prefetch"])
    if spec.get("decode_nice") is not None:
        import threading
        from concurrent.futures import ThreadPoolExecutor

        import featurebench.data.pipeline as pipeline

        def lower():
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), int(spec["decode_nice"]))

        class NicePool(ThreadPoolExecutor):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, initializer=lower, **kwargs)

        pipeline.ThreadPoolExecutor = NicePool


def run_worker(spec: dict) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    _patch_levers(spec)
    result = {"classic": worker_classic, "extract": worker_extract, "model": worker_model}[spec["kind"]](spec)
    result.setdefault("rss_mib", _peak_rss_mib())
    result["process_s"] = time.perf_counter() - started
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- driver
def spawn(spec: dict, wall_start: float | None = None) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"worker {spec['kind']} {spec['model']} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1][len("RESULT "):])
    result["e2e_s"] = time.perf_counter() - started
    return result


def loadavg() -> str:
    return " / ".join(f"{v:.2f}" for v in os.getloadavg())


def versions() -> str:
    import importlib.metadata as md

    names = ["tensorflow-cpu", "keras", "openvino", "numpy", "opencv-python-headless", "pillow", "h5py",
             "ai-edge-litert"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            pass
    return f"Python {platform.python_version()}; " + ", ".join(found)


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def best_of(results: list[dict]) -> dict:
    return max(results, key=lambda r: r["img_s"])


def run_plan(plan: dict[str, dict], repeat: int, label: str) -> dict[str, dict]:
    """Spawn every variant of ``plan`` ``repeat`` times, interleaved; each one's best run."""
    runs: dict[str, list[dict]] = {k: [] for k in plan}
    for _ in range(repeat):
        for name, spec in plan.items():
            runs[name].append(spawn(spec))
            print(f"  {label} {name}: {runs[name][-1]['img_s']:.1f} img/s", flush=True)
    return {k: best_of(v) for k, v in runs.items()}


def header(title: str, argv: list[str], extra: list[str]) -> list[str]:
    from featurebench.extractors.cpu import cpu_class, isa_summary

    command = " ".join(["python", f"scripts/{Path(sys.argv[0]).name}", *argv])
    return [f"# {title}", "", f"Command: `{command}`", "",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
            f"- Machine: {isa_summary()}; CPU class {cpu_class()}; {os.cpu_count()} cores, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM",
            *([f"- **ISA capped**: ONEDNN_MAX_CPU_ISA={os.environ['ONEDNN_MAX_CPU_ISA']}: oneDNN's kernels (the "
               "convolutions and matrix products, where nearly all the time goes) use at most that ISA; "
               "OpenVINO's own element-wise kernels still use the CPU's full ISA. An approximation of such a "
               "CPU, not one."] if os.environ.get("ONEDNN_MAX_CPU_ISA") else []),
            f"- Versions: {versions()}", *extra]


# --------------------------------------------------------------------------- levers
def subset(data: Path, work: Path, name: str, n: int) -> Path:
    """The first ``n`` images of ``data`` as hard links in their own folder (same class layout)."""
    folder = work / name
    if not folder.exists():
        for path in image_paths(data)[:n]:
            target = folder / path.relative_to(data)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    return folder


def decode_cost_rows(paths: list[Path]) -> list[tuple[str, float]]:
    """CPU ms per image (one thread) of read + decode + resize to 224x224 on each decode route:
    Pillow only (the reference), OpenCV for JPEGs (same pixels), simplejpeg first (the [jpeg]
    extra, same pixels; the default when installed), and ``fast_decode``."""
    from featurebench.data import decode as decode_module
    from featurebench.data.pipeline import DecodeOptions, _decode_candidate
    from featurebench.data.sources import Candidate

    opencv_route, simplejpeg_route = decode_module._decode_jpeg_opencv, decode_module._decode_jpeg_simplejpeg  # noqa: SLF001

    def cost(options: DecodeOptions, pillow_only: bool = False, simplejpeg: bool = True) -> float:
        decode_module._decode_jpeg_opencv = (lambda *a: None) if pillow_only else opencv_route  # noqa: SLF001
        decode_module._decode_jpeg_simplejpeg = simplejpeg_route if simplejpeg else (lambda *a: None)  # noqa: SLF001
        best = float("inf")
        for _ in range(3):
            started = time.thread_time()
            for i, path in enumerate(paths):
                _decode_candidate(i, Candidate(str(path), None, None), Path("/"), options)
            best = min(best, (time.thread_time() - started) / len(paths) * 1e3)
        decode_module._decode_jpeg_opencv, decode_module._decode_jpeg_simplejpeg = opencv_route, simplejpeg_route  # noqa: SLF001
        return best

    full, fast = DecodeOptions((224, 224)), DecodeOptions((224, 224), fast_decode=True)
    rows = [("Pillow only (the reference pixels)", cost(full, pillow_only=True)),
            ("OpenCV for JPEGs (same pixels)", cost(full, simplejpeg=False))]
    if decode_module._simplejpeg() is not None:  # noqa: SLF001
        rows.append(("simplejpeg for full-size JPEGs, [jpeg] extra (same pixels; default when installed)",
                     cost(full)))
    rows += [("fast_decode, Pillow draft", cost(fast, pillow_only=True)), ("fast_decode (default route)", cost(fast))]
    return rows


# --------------------------------------------------------------------------- fidelity
def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine in float64 (random-init MobileNet features are ~1e-19: float32 would underflow)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norms > 0, (a * b).sum(1) / np.where(norms > 0, norms, 1.0), 1.0)


def logreg_accuracy(path: Path) -> tuple[float, np.ndarray]:
    """The classic protocol: stored 75/25 split, GridSearchCV(LogisticRegression, C grid, cv=3)."""
    import h5py
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV

    with h5py.File(path) as h5:
        x, y, split = h5["features"][()], h5["labels"][()], int(h5.attrs["split_index"])
    grid = GridSearchCV(LogisticRegression(max_iter=2000), {"C": [0.01, 0.1, 1.0, 10.0, 100.0]}, cv=3, n_jobs=1)
    grid.fit(x[:split], y[:split])
    predictions = grid.predict(x[split:])
    return float((predictions == y[split:]).mean()), predictions


# --------------------------------------------------------------------------- command line
def make_parser(description: str) -> argparse.ArgumentParser:
    """The options every extraction benchmark takes (each script adds its own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--images", type=int, default=300, help="generated JPEGs (plus the ../shared sample photos)")
    parser.add_argument("--vgg-images", type=int, default=96, help="images used for vgg16 (slow: ~3 img/s)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ",".join(MODELS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant (best kept; the machine is shared)")
    parser.add_argument("--out", help="Markdown file to write (default: results/bench_extract*_<CPU class>.md)")
    parser.add_argument("--isa", help="cap oneDNN's ISA (ONEDNN_MAX_CPU_ISA, e.g. AVX2) to approximate an older CPU class")
    parser.add_argument("--keep", help="keep the generated images and files in this folder")
    return parser


def run_benchmark(args: argparse.Namespace, report: Callable[[argparse.Namespace, Path], list[str]],
                  stem: str) -> None:
    """Run ``report(args, work)`` in a work folder and write its lines to ``--out`` or
    ``results/<stem>_<CPU class>.md``."""
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    from featurebench.extractors.cpu import cpu_class

    machine = cpu_class()  # results/ keeps one table per CPU class: runs on another class never overwrite it
    if args.isa:  # oneDNN (OpenVINO's and TensorFlow's convolutions) capped below what the CPU has
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.isa.upper()  # the workers inherit it
        machine = f"{machine}-capped-{args.isa.lower()}"
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_extract-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        lines = report(args, work)
        out = Path(args.out or REPO / f"results/{stem}_{machine}.md")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def add_options(parser: argparse.ArgumentParser, options: dict[str, dict]) -> None:
    """Add a benchmark's own options (``{"--flag": argparse keyword arguments}``)."""
    for flag, kwargs in options.items():
        parser.add_argument(flag, **kwargs)


def run_script(doc: str, report: Callable[[argparse.Namespace, Path], list[str]], stem: str,
               options: dict[str, dict] | None = None) -> None:
    """A benchmark script's main: the shared options and its own, then :func:`run_benchmark`."""
    parser = make_parser(doc.split("\n")[0])
    add_options(parser, options or {})
    run_benchmark(parser.parse_args(), report, stem)


if __name__ == "__main__":  # a worker: spawn() runs this file with --worker SPEC
    run_worker(json.loads(sys.argv[sys.argv.index("--worker") + 1]))
