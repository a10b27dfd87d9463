"""Extraction throughput: the classic script vs ``featurebench extract`` vs the network alone.

One command, one Markdown table under ``results/``, named by the machine's CPU class
(``featurebench.extractors.cpu.cpu_class``: amx, avx512-vnni, avx512, avx2), so tables from
different machines sit side by side instead of overwriting each other::

    python scripts/bench_extract.py                       # -> results/bench_extract_<class>.md
    python scripts/bench_extract.py --rss-check           # -> results/bench_extract_rss_<class>.md
    python scripts/bench_extract.py --levers              # -> results/bench_extract_levers_<class>.md
    python scripts/bench_extract.py --fidelity            # -> results/bench_extract_fidelity_<class>.md
    python scripts/bench_extract.py --int8                # -> results/bench_extract_int8_<class>.md
    python scripts/bench_extract.py --decode              # -> results/bench_extract_decode_<class>.md

Every header records the CPU model, its ISA flags (AVX2, AVX-512, VNNI, BF16, AMX) and
class; every ``extract`` row the engine and precision that really ran.

Images: ``--images N`` (default 300) realistic JPEGs of mixed sizes (long side 300-1200 px,
quality 85-95, some progressive) cut from the real photos in ``../shared/datasets/`` (random
crops, resized, light sensor noise; synthetic scenes when ../shared is absent), plus the real
photos in ``../shared/images/samples/``, written to a temporary folder.

For each model (mobilenet, resnet50, vgg16 with ``weights=none``, and the Coral TFLite
MobileNet), each variant runs in its own subprocess (clean peak RSS), in-process timing:
TensorFlow import, model build and the first (tracing) call are excluded from every variant
alike; "e2e s" is the subprocess's whole wall time including them.

1. classic: per batch of 32 paths, ``cv2.imread`` + ``cv2.resize`` + ``img_to_array`` +
   ``preprocess_input`` in Python, ``model.predict(batch)``, rows buffered and written to an
   h5py dataset (float64 as the book's HDF5DatasetWriter; and float32);
2. ``featurebench extract`` with default settings, in-process via ``run_extract``
   (journal, fsyncs and HDF5 assembly included);
3. model-only: the forward pass alone (``model(x, training=False)`` in a ``tf.function``;
   LiteRT ``invoke``) on preloaded, preprocessed tensors, best of a batch-size sweep.

The machine is shared with other jobs: the load average is recorded before every model, and
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
def _source_photos() -> list[Path]:
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
    photos = _source_photos()
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
    opts = {"weights": "imagenet" if model == "coral" else spec.get("weights", "none"), **spec.get("opts", {})}
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

    command = " ".join(["python scripts/bench_extract.py", *argv])
    return [f"# {title}", "", f"Command: `{command}`", "",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
            f"- Machine: {isa_summary()}; CPU class {cpu_class()}; {os.cpu_count()} cores, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM",
            *([f"- **ISA capped**: ONEDNN_MAX_CPU_ISA={os.environ['ONEDNN_MAX_CPU_ISA']}: oneDNN's kernels (the "
               "convolutions and matrix products, where nearly all the time goes) use at most that ISA; "
               "OpenVINO's own element-wise kernels still use the CPU's full ISA. An approximation of such a "
               "CPU, not one."] if os.environ.get("ONEDNN_MAX_CPU_ISA") else []),
            f"- Versions: {versions()}", *extra]


def _main_variants(model: str, base: dict, work: Path) -> dict[str, dict]:
    """The subprocess specs of one model's row: classic, extract (default and alternatives), model-only."""
    variants = {
        "classic64": {**base, "kind": "classic", "dtype": "float64", "out": str(work / f"{model}-classic64.h5")},
        "extract": {**base, "kind": "extract", "out": str(work / f"{model}-fb.h5"), "float16_copy": True},
        "model": {**base, "kind": "model"},
        "classic32": {**base, "kind": "classic", "dtype": "float32", "out": str(work / f"{model}-classic32.h5")},
    }
    if model != "coral":  # the engine and precision choices are for Keras models
        variants.update({
            "extract_tf": {**base, "kind": "extract", "out": str(work / f"{model}-tf.h5"),
                           "opts": {"engine": "tensorflow"}},
            "extract_bf16": {**base, "kind": "extract", "out": str(work / f"{model}-bf16.h5"),
                             "opts": {"precision": "bf16"}},
            "model_tf": {**base, "kind": "model", "engine": "tensorflow"},
        })
    return variants


def main_benchmark(args, data: Path, work: Path) -> list[str]:
    n_all = len(image_paths(data))
    lines_per_model = []
    loads = []
    for model in args.models:
        if model == "coral" and not CORAL.exists():
            continue
        model_data = data
        if model == "vgg16" and args.vgg_images < n_all:
            model_data = work / "vgg-subset"
            if not model_data.exists():
                for path in image_paths(data)[:args.vgg_images]:
                    target = model_data / path.relative_to(data)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(path, target)
        loads.append(f"{model}: {loadavg()}")
        print(f"[{time.strftime('%H:%M:%S')}] {model} (load {loadavg()})", flush=True)
        variants = _main_variants(model, {"model": model, "data": str(model_data)}, work)
        r = run_plan(variants, args.repeat, model)
        lines_per_model.append((model, r["classic64"]["n"], r))

    def rate(r: dict, key: str) -> str:
        return f"{r[key]['img_s']:.1f}" if key in r else "-"

    def ratio(r: dict, key: str, over: str, unit: str = "") -> str:
        return f"{r[key]['img_s'] / r[over]['img_s']:.2f}{unit}" if key in r and over in r else "-"

    out = [
        "(2) is `featurebench extract` with its defaults (OpenVINO fp32 for Keras models, LiteRT for the .tflite); "
        "(3) the issue's model-only limit, TensorFlow's compiled forward pass; (3') the same for the engine "
        "`extract` uses (OpenVINO; LiteRT for coral). bf16 is the opt-in `--precision bf16`.", "",
        "| model | images | (1) classic f64 img/s | classic f32 img/s | (2) extract img/s | extract --engine tensorflow "
        "| extract --precision bf16 | (3) model-only TF img/s (batch) | (3') model-only engine img/s (batch) "
        "| (2)/(1) | (2)/(3) | (2)/(3') | bf16/(1) | e2e s incl. start-up (1) / (2) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, n, r in lines_per_model:
        c, e, m = r["classic64"], r["extract"], r["model"]
        tf_model = r.get("model_tf", m)  # coral: LiteRT is both
        out.append(f"| {model} | {n} | {c['img_s']:.1f} | {rate(r, 'classic32')} | {e['img_s']:.1f} | "
                   f"{rate(r, 'extract_tf')} | {rate(r, 'extract_bf16')} | {tf_model['img_s']:.1f} "
                   f"({tf_model['batch']}) | {m['img_s']:.1f} ({m['batch']}) | {ratio(r, 'extract', 'classic64', 'x')} | "
                   f"{e['img_s'] / tf_model['img_s']:.2f} | {ratio(r, 'extract', 'model')} | "
                   f"{ratio(r, 'extract_bf16', 'classic64', 'x')} | {c['e2e_s']:.1f} / {e['e2e_s']:.1f} |")
    out += ["", "| model | peak RSS (1) classic | peak RSS (2) extract | peak RSS (3') model-only "
            "| file (1) float64 | file (1) float32 | file (2) float32 | file (2) float16 | (2) f32 / (1) f64 file "
            "(features only) | (2) f16 / (1) f64 file (features only) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for model, n, r in lines_per_model:
        c, e, m, c32 = r["classic64"], r["extract"], r["model"], r["classic32"]
        out.append(f"| {model} | {c['rss_mib']:.0f} MiB | {e['rss_mib']:.0f} MiB | {m['rss_mib']:.0f} MiB | "
                   f"{mib(c['bytes'])} | {mib(c32['bytes'])} | {mib(e['bytes'])} | {mib(e['bytes_f16'])} | "
                   f"{e['bytes'] / c['bytes']:.3f} ({e['feature_bytes'] / c['feature_bytes']:.3f}) | "
                   f"{e['bytes_f16'] / c['bytes']:.3f} ({e['feature_bytes_f16'] / c['feature_bytes']:.3f}) |")
    out += ["", "CPU ms per image (all threads; img/s on 2 cores can never beat 2000 / CPU ms): " + "; ".join(
        f"{model} " + ", ".join(f"{k} {v['cpu_ms']:.1f}" for k, v in r.items() if "cpu_ms" in v)
        for model, _, r in lines_per_model)]
    out += ["", "Engine and precision that ran (read back from each feature file): " + "; ".join(
        f"{model} " + ", ".join(f"{k} {v['ran']}" for k, v in r.items() if "ran" in v)
        for model, _, r in lines_per_model)]
    out += ["", "Model-only batch sweep (img/s): " + "; ".join(
        f"{model} engine {r['model']['sweep']}" + (f", TF {r['model_tf']['sweep']}" if "model_tf" in r else "")
        for model, _, r in lines_per_model), "",
        "Load average (1/5/15 min) before each model: " + "; ".join(loads) + f"; at the end: {loadavg()}."]
    return out


# --------------------------------------------------------------------------- levers
def _subset(data: Path, work: Path, name: str, n: int) -> Path:
    """The first ``n`` images of ``data`` as hard links in their own folder (same class layout)."""
    folder = work / name
    if not folder.exists():
        for path in image_paths(data)[:n]:
            target = folder / path.relative_to(data)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    return folder


def _lever_rows(model: str, data: Path, work: Path, repeat: int) -> list[tuple[str, dict]]:
    base = {"model": model, "data": str(data), "out": str(work / f"lever-{model}.h5")}
    if model == "coral":
        default_bs = 32
    else:
        from featurebench.extractors import get_spec

        default_bs = get_spec(model).batch_size
    ext = [("extract default", {}), ("fast_decode", {"opts": {"fast_decode": True}}),
           ("workers=1", {"opts": {"workers": 1}}), ("workers=3", {"opts": {"workers": 3}}),
           ("lookahead=16", {"lookahead": 16}), ("lookahead=128", {"lookahead": 128}),
           ("decode threads nice +10", {"decode_nice": 10}), ("no batch prefetch thread", {"prefetch": 0}),
           ("prefetch 2 batches", {"prefetch": 2})]
    ext += [(f"batch={bs}", {"opts": {"batch_size": bs}}) for bs in (8, 16, 32, 64) if bs != default_bs]
    models = [("model-only (default engine)", {"kind": "model"})]
    tensorflow = {"engine": "tensorflow"}
    if model == "coral":
        ext += [(f"LiteRT threads={t}", {"tflite_threads": t}) for t in (1, 2)]
        models += [(f"model-only LiteRT threads={t}", {"kind": "model", "tflite_threads": t}) for t in (1, 2)]
    else:
        ext += [("engine tensorflow", {"opts": tensorflow}),
                ("precision bf16", {"opts": {"precision": "bf16"}}),
                ("bf16 + fast_decode", {"opts": {"precision": "bf16", "fast_decode": True}}),
                ("precision bf16, engine tensorflow", {"opts": {"precision": "bf16", **tensorflow}})]
        models += [("model-only TensorFlow tf.function", {"kind": "model", **tensorflow}),
                   ("model-only TensorFlow model.predict", {"kind": "model", "call": "predict",
                                                            "sweep": [default_bs], **tensorflow}),
                   ("model-only bf16", {"kind": "model", "precision": "bf16"}),
                   ("model-only bf16 TensorFlow", {"kind": "model", "precision": "bf16", **tensorflow})]
    if model == "vgg16":  # slow: only the forward passes and the extract default
        few = {"sweep": [16], "min_images": 32}
        ext = [("extract default", {})]
        models = [("model-only (default engine)", {"kind": "model", **few}),
                  ("model-only TensorFlow tf.function", {"kind": "model", **tensorflow, **few}),
                  ("model-only bf16", {"kind": "model", "precision": "bf16", **few}),
                  ("model-only bf16 TensorFlow", {"kind": "model", "precision": "bf16", **tensorflow, **few})]
    plan = [(label, {**base, "kind": "extract", **extra}) for label, extra in ext]
    plan += [(label, {**base, **extra}) for label, extra in models]
    results: dict[str, list[dict]] = {label: [] for label, _ in plan}
    for _ in range(repeat):
        for label, spec in plan:
            try:
                results[label].append(spawn(spec))
            except RuntimeError as exc:
                print(f"  {label}: FAILED {str(exc)[-300:]}", flush=True)
                continue
            print(f"  {model} {label}: {results[label][-1]['img_s']:.1f} img/s", flush=True)
    return [(label, best_of(runs)) for label, runs in results.items() if runs]


def _hdf5_costs(work: Path) -> list[str]:
    """Write/read time and size of a features dataset: chunk size and compression."""
    import h5py

    from featurebench.store.writer import chunk_rows

    lines = ["| features | chunk rows | compression | write s | read s | file size |", "|---|---|---|---|---|---|"]
    sources = []
    for path in sorted(work.glob("lever-*.h5")):
        with h5py.File(path) as h5:
            feats = h5["features"][()]
        sources.append((f"{path.stem[6:]} {feats.shape[1]}-d", feats))
    if not sources:
        sources = [("random 2048-d", np.random.default_rng(0).random((300, 2048), dtype=np.float32))]
    for name, feats in sources:
        feats = np.concatenate([feats] * max(1, 4000 // len(feats)))  # a few thousand rows, like a real data set
        default_rows = chunk_rows(feats.shape[1], 4, len(feats))
        for rows, comp in [(None, None), (default_rows, None), (64, None), (default_rows, "lzf"), (default_rows, "gzip")]:
            path = work / "chunk-test.h5"
            started = time.perf_counter()
            with h5py.File(path, "w") as h5:
                ds = h5.create_dataset("features", shape=feats.shape, dtype=np.float32, compression=comp,
                                       chunks=(min(rows, len(feats)), feats.shape[1]) if rows else None)
                for start in range(0, len(feats), 1000):
                    ds[start:start + 1000] = feats[start:start + 1000]
            write = time.perf_counter() - started
            started = time.perf_counter()
            with h5py.File(path) as h5:
                h5["features"][()]
            read = time.perf_counter() - started
            lines.append(f"| {name} x{len(feats)} rows | {rows or 'contiguous'} | {comp or 'none'} | {write:.3f} | {read:.3f} | "
                         f"{mib(path.stat().st_size)} |")
    return lines


def _decode_cost_rows(paths: list[Path]) -> list[tuple[str, float]]:
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


def _decode_costs(data: Path) -> list[str]:
    rows = _decode_cost_rows(image_paths(data))
    return ["| decode path | CPU ms/img |", "|---|---|"] + [f"| {name} | {ms:.2f} |" for name, ms in rows]


def decode_report(args, work: Path) -> list[str]:
    """``--decode``: JPEG decoders (speed, bit-exactness) and the decode share of extract's CPU time."""
    import cv2

    from featurebench.data import decode as decode_module
    from featurebench.data.decode import _decode_jpeg_simplejpeg  # noqa: SLF001

    data = work / "images"
    if not data.exists():
        make_images(data, args.images)
    real = _source_photos()
    extra = [f"- Images: {len(image_paths(data))} generated JPEGs (long side 300-1200 px) + samples; "
             f"{len(real)} real photos from ../shared/datasets (Flowers-17, Dogs vs Cats)",
             f"- Load average at the start: {loadavg()}", ""]
    lines = header("JPEG decoding: decoders and the decode share of extract's CPU time", sys.argv[1:], extra)
    if decode_module._simplejpeg() is None:  # noqa: SLF001
        raise SystemExit("--decode compares against simplejpeg: pip install 'featurebench[jpeg]'")
    same = total = 0
    for path in [*image_paths(data), *real]:
        blob = path.read_bytes()
        if path.suffix.lower() != ".jpg":
            continue
        array = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        turbo = _decode_jpeg_simplejpeg(blob, True)
        total += 1
        same += turbo is not None and np.array_equal(turbo, cv2.cvtColor(array, cv2.COLOR_BGR2RGB))
    lines += [f"simplejpeg vs OpenCV, full-size RGB decode: **{same} of {total}** JPEGs bit-identical.", "",
              "## Read + decode + resize to 224x224, one thread (CPU ms per image)", "",
              "| decode path | generated 300-1200 px | real photos (../shared) |", "|---|---|---|"]
    generated, photos = _decode_cost_rows(image_paths(data)), dict(_decode_cost_rows(real[::4]))
    lines += [f"| {name} | {ms:.2f} | {photos.get(name, float('nan')):.2f} |" for name, ms in generated]
    costs = dict(generated)
    lines += ["", "## Decode share of `extract`'s CPU time (generated images; random-init weights)", "",
              "Share = the one-thread read + decode + resize cost above / `extract`'s CPU ms per image "
              "(all threads), each variant in its own process.", "",
              "| model | precision | decoder | extract img/s | extract CPU ms/img | decode + resize CPU ms/img | decode share |",
              "|---|---|---|---|---|---|---|"]
    opencv_name, turbo_name = "OpenCV for JPEGs (same pixels)", next(n for n in costs if n.startswith("simplejpeg"))
    for model in args.models:
        for precision in ("fp32", "int8"):
            for decoder, name in (("OpenCV", opencv_name), ("simplejpeg", turbo_name)):
                spec = {"model": model, "data": str(data), "kind": "extract", "out": str(work / "decode.h5"),
                        "opts": {"precision": precision}, "no_simplejpeg": decoder == "OpenCV"}
                r = best_of([spawn(spec) for _ in range(args.repeat)])
                print(f"  {model} {precision} {decoder}: {r['img_s']:.1f} img/s", flush=True)
                lines.append(f"| {model} | {r['ran']} | {decoder} | {r['img_s']:.1f} | {r['cpu_ms']:.1f} | "
                             f"{costs[name]:.2f} | {costs[name] / r['cpu_ms']:.0%} |")
    lines += ["", f"Load average at the end: {loadavg()}."]
    return lines


def _size_scaling(work: Path, repeat: int) -> list[str]:
    lines = ["| long side px | mobilenet img/s | mobilenet CPU ms/img | coral img/s | coral CPU ms/img "
             "| coral fast_decode img/s | coral fast_decode CPU ms/img |", "|---|---|---|---|---|---|---|"]
    for low, high in [(300, 360), (600, 700), (1100, 1200)]:
        data = work / f"size-{low}"
        if not data.exists():
            make_images(data, 96, seed=low, sizes=(low, high))
            shutil.rmtree(data / "samples", ignore_errors=True)
        cells = []
        for model, extra in [("mobilenet", {}), ("coral", {}), ("coral", {"opts": {"fast_decode": True}})]:
            if model == "coral" and not CORAL.exists():
                cells.append({"img_s": float("nan"), "cpu_ms": float("nan")})
                continue
            spec = {"model": model, "data": str(data), "out": str(work / "size.h5"), "kind": "extract", **extra}
            cells.append(best_of([spawn(spec) for _ in range(repeat)]))
        lines.append(f"| {low}-{high} | " + " | ".join(f"{c['img_s']:.1f} | {c['cpu_ms']:.1f}" for c in cells) + " |")
    return lines


def levers(args, work: Path) -> list[str]:
    data = work / "images"
    if not data.exists():
        make_images(data, args.images)
    models = [m for m in args.models if m != "coral" or CORAL.exists()]
    extra = [f"- Images: {len(image_paths(data))} generated JPEGs + samples (resnet50, vgg16: the first 128)",
             f"- Load average at the start: {loadavg()}; repeat {args.repeat} (best kept)",
             "- Each row: its own subprocess; img/s in-process (build and tracing excluded); CPU ms/img = the "
             "process's CPU time per image (all threads), less sensitive to other jobs on the machine than img/s", ""]
    lines = header("Extraction levers", sys.argv[1:], extra)
    lines += [f"## Decode + resize to 224x224, one thread ({len(image_paths(data))} images above; read, digest, "
              "decode, EXIF, resize)", ""] + _decode_costs(data) + [""]
    for model in models:
        print(f"[{time.strftime('%H:%M:%S')}] levers {model} (load {loadavg()})", flush=True)
        model_data = _subset(data, work, "subset-128", 128) if model in ("resnet50", "vgg16") else data
        load = loadavg()
        rows = _lever_rows(model, model_data, work, args.repeat)
        reference = dict(rows)["extract default"]["img_s"]
        lines += [f"## {model} (load before: {load})", "", "| variant | img/s | vs extract default | CPU ms/img | note |",
                  "|---|---|---|---|---|"]
        for label, r in rows:
            note = f"best batch {r['batch']}; sweep {r['sweep']}" if "sweep" in r else ""
            lines.append(f"| {label} | {r['img_s']:.1f} | {r['img_s'] / reference:.2f} | {r.get('cpu_ms', 0):.1f} | {note} |")
        lines.append("")
    if not args.skip_sizes:
        print(f"[{time.strftime('%H:%M:%S')}] image size scaling (load {loadavg()})", flush=True)
        lines += ["## Throughput vs image size (96 JPEGs per size, defaults)", ""] + _size_scaling(work, args.repeat)
    lines += ["", "## HDF5 writing: chunk rows and compression (features from the runs above, tiled)", ""]
    lines += _hdf5_costs(work)
    lines += ["", f"Load average at the end: {loadavg()}."]
    return lines


# --------------------------------------------------------------------------- memory
def rss_check(args, work: Path) -> list[str]:
    sizes = [int(n) for n in args.rss_images.split(",")]
    data = work / "small"
    if not data.exists():
        print(f"generating {max(sizes)} small JPEGs", flush=True)
        make_small_images(data, max(sizes))
    model = args.models[0] if len(args.models) == 1 else "coral"
    extra = [f"- Model: {model}; images: distinct small JPEGs (64-160 px) in 4 class folders",
             f"- Load average at the start: {loadavg()}",
             "- Each size in its own subprocess; peak RSS = ru_maxrss (includes the runtime and the model)", ""]
    lines = header("Peak memory vs number of images (featurebench extract)", sys.argv[1:], extra)
    lines += ["| images | peak RSS | img/s | output file |", "|---|---|---|---|"]
    results = {}
    for n in sizes:
        folder = _subset(data, work, f"small-{n}", n) if n < max(sizes) else data
        print(f"[{time.strftime('%H:%M:%S')}] rss {n} (load {loadavg()})", flush=True)
        results[n] = spawn({"model": model, "data": str(folder), "out": str(work / f"rss-{n}.h5"), "kind": "extract"})
        r = results[n]
        lines.append(f"| {n:,} | {r['rss_mib']:.0f} MiB | {r['img_s']:.1f} | {mib(r['bytes'])} |")
    first, last = results[sizes[0]], results[sizes[-1]]
    growth = last["rss_mib"] / first["rss_mib"] - 1
    lines += ["", f"Peak RSS at {sizes[-1]:,} images is {growth:+.1%} relative to {sizes[0]:,} "
              f"(target: within 10%): {'met' if abs(growth) <= 0.10 else 'NOT met'}.", "",
              f"Load average at the end: {loadavg()}."]
    return lines


# --------------------------------------------------------------------------- fidelity
def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine in float64 (random-init MobileNet features are ~1e-19: float32 would underflow)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(norms > 0, (a * b).sum(1) / np.where(norms > 0, norms, 1.0), 1.0)


def _logreg_accuracy(path: Path) -> tuple[float, np.ndarray]:
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


def fidelity(args, work: Path) -> list[str]:
    """Engines, fast_decode and bf16 against the TensorFlow fp32 full-decode reference, on real photos and models."""
    import h5py

    from featurebench.extract import ExtractOptions, run_extract

    flowers = SHARED / "datasets" / "flowers17"
    if not flowers.is_dir():
        raise SystemExit(f"{flowers} not found: the fidelity check needs the real Flowers-17 photos")
    n_photos = len(image_paths(flowers))
    extra = [f"- Data: Flowers-17 ({n_photos} photos, 17 classes); seed-42 shuffle, stored 75/25 split; "
             "GridSearchCV(LogisticRegression, C in {0.01, 0.1, 1, 10, 100}, cv=3)",
             f"- Load average at the start: {loadavg()}", ""]
    lines = header("Fidelity of the fast paths (features and downstream accuracy)", sys.argv[1:], extra)
    lines += ["| model | variant | img/s (whole run) | cosine to reference: min / 1st pct / mean | test accuracy "
              "| test predictions changed |", "|---|---|---|---|---|---|"]
    runs = [("efficientnet_lite0", [("reference: tensorflow fp32, full decode", {"engine": "tensorflow"}),
                                    ("default: openvino fp32", {}),
                                    ("fast_decode", {"fast_decode": True}),
                                    ("precision bf16 (openvino)", {"precision": "bf16"}),
                                    ("precision bf16, engine tensorflow", {"precision": "bf16", "engine": "tensorflow"}),
                                    ("bf16 + fast_decode", {"precision": "bf16", "fast_decode": True})])]
    if CORAL.exists():
        runs.append((str(CORAL), [("reference: full decode", {}), ("fast_decode", {"fast_decode": True})]))
    for model, variants in runs:
        reference = None
        for label, opts in variants:
            print(f"[{time.strftime('%H:%M:%S')}] {Path(model).name} {label} (load {loadavg()})", flush=True)
            out = work / f"fid-{Path(model).stem}-{len(lines)}.h5"
            started = time.perf_counter()
            run_extract(ExtractOptions(str(flowers), str(out), model=model, force=True,
                                       command="bench_extract --fidelity", **opts))
            rate = n_photos / (time.perf_counter() - started)
            with h5py.File(out) as h5:
                feats, paths = h5["features"][()], [p.decode() for p in h5["paths"][()]]
            accuracy, predictions = _logreg_accuracy(out)
            if reference is None:
                reference = (feats, paths, predictions)
                cos_text, changed = "-", "-"
            else:
                assert paths == reference[1], "row order differs"
                cos = _cosines(reference[0], feats)
                cos_text = f"{cos.min():.6f} / {np.percentile(cos, 1):.6f} / {cos.mean():.6f}"
                changed = f"{int((predictions != reference[2]).sum())} of {len(predictions)}"
            lines.append(f"| {Path(model).name} | {label} | {rate:.1f} | {cos_text} | {accuracy:.4f} | {changed} |")
    variants = {"openvino fp32": {}, "openvino bf16": {"precision": "bf16"},
                "tensorflow bf16": {"engine": "tensorflow", "precision": "bf16"}}
    lines += ["", "Random-init backbones (weights=none) against tensorflow fp32 on 64 of the photos (cosine "
              "min / mean; random weights say little about trained ones):", "",
              "| model | " + " | ".join(variants) + " | largest fp32 feature |", "|---|" + "---|" * (len(variants) + 1)]
    from featurebench.data.pipeline import DecodeOptions, load_image
    from featurebench.extractors import load_extractor

    photos = image_paths(flowers)[::21][:64]
    for model in ("mobilenet", "resnet50", "vgg16"):
        reference = load_extractor(model, weights="none", seed=1, engine="tensorflow")
        images = np.stack([load_image(p, DecodeOptions(reference.input_size)) for p in photos])

        def features(extractor) -> np.ndarray:
            return np.concatenate([extractor.extract(images[i:i + 16]) for i in range(0, len(images), 16)])

        a = features(reference)
        cells = []
        for kwargs in variants.values():
            cos = _cosines(a, features(load_extractor(model, weights="none", seed=1, **kwargs)))
            cells.append(f"{cos.min():.6f} / {cos.mean():.6f}")
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {np.abs(a).max():.3g} |")
    lines += ["", f"Load average at the end: {loadavg()}."]
    return lines


# --------------------------------------------------------------------------- int8
def _int8_speed(args, data: Path, work: Path) -> list[str]:
    """fp32 vs int8: ``extract`` and the forward pass alone, each variant in its own process."""
    lines = ["| model | variant | ran as | img/s | CPU ms/img | int8 / fp32 img/s | int8 / fp32 CPU ms | note |",
             "|---|---|---|---|---|---|---|---|"]
    for model in args.models:
        base = {"model": model, "data": str(data)}
        print(f"[{time.strftime('%H:%M:%S')}] int8 speed {model} (load {loadavg()})", flush=True)
        calibration = spawn({**base, "kind": "extract", "out": str(work / f"int8-{model}-warm.h5"),
                             "opts": {"precision": "int8"}})  # fills the cache; its calibration is timed
        plan = {"extract fp32": {**base, "kind": "extract", "out": str(work / f"int8-{model}-fp32.h5")},
                "extract int8": {**base, "kind": "extract", "out": str(work / f"int8-{model}-int8.h5"),
                                 "opts": {"precision": "int8"}},
                "model-only fp32": {**base, "kind": "model"},
                "model-only int8": {**base, "kind": "model", "precision": "int8"}}
        best = run_plan(plan, args.repeat, model)
        for name, r in best.items():
            kind = name.split(" ")[0]
            fp32, is_int8 = best[f"{kind} fp32"], name.endswith("int8")
            ratio = f"{r['img_s'] / fp32['img_s']:.2f}x | {fp32['cpu_ms'] / r['cpu_ms']:.2f}x" if is_int8 else "- | -"
            note = f"batch {r['batch']}" if "batch" in r else f"{r['n']} images"
            if name == "extract int8":
                note += f"; first run's build + calibration {calibration['build_s']:.0f} s (cached after)"
            lines.append(f"| {model} | {name} | {r.get('ran', '')} | {r['img_s']:.1f} | {r['cpu_ms']:.1f} | {ratio} | {note} |")
    return lines


def _int8_fidelity(work: Path) -> list[str]:
    """EfficientNet-Lite0 (real ImageNet weights): fp32 vs int8 calibrated on each real dataset."""
    import h5py

    from featurebench.extract import ExtractOptions, run_extract

    datasets = [("flowers17", SHARED / "datasets" / "flowers17", {}),
                ("dogs-vs-cats", SHARED / "datasets" / "dogs-vs-cats" / "train", {"label_pattern": r"^(cat|dog)\."})]
    lines = ["| dataset | images | variant | whole run s (img/s) | cosine to fp32, all rows: min / 1st pct / mean "
             "| held-out check in the file: mean / min (images) | test accuracy | change vs fp32 (points) "
             "| test predictions changed |", "|---|---|---|---|---|---|---|---|---|"]
    for name, root, extra in datasets:
        if not root.is_dir():
            lines.append(f"| {name} | - | not found in ../shared | | | | | | |")
            continue
        reference = None
        for label, precision in [("fp32 (default)", "fp32"), ("int8, first run (calibrates)", "int8"),
                                 ("int8, second run (cached)", "int8")]:
            print(f"[{time.strftime('%H:%M:%S')}] int8 fidelity {name} {label} (load {loadavg()})", flush=True)
            out = work / f"int8-fid-{name}-{len(lines)}.h5"
            started = time.perf_counter()
            summary = run_extract(ExtractOptions(str(root), str(out), model="efficientnet_lite0", force=True,
                                                 precision=precision, command="bench_extract --int8", **extra))
            seconds = time.perf_counter() - started
            with h5py.File(out) as h5:
                feats, attrs = h5["features"][()], dict(h5.attrs)
            accuracy, predictions = _logreg_accuracy(out)
            check = "-"
            if "int8_cosine_mean" in attrs:
                check = (f"{attrs['int8_cosine_mean']:.4f} / {attrs['int8_cosine_min']:.4f} "
                         f"({attrs['int8_holdout_images']}; calibrated on {attrs['int8_calibration_images']})")
            if reference is None:
                reference = (feats, accuracy, predictions)
                cos_text = delta = changed = "-"
            else:
                cos = _cosines(reference[0], feats)
                cos_text = f"{cos.min():.4f} / {np.percentile(cos, 1):.4f} / {cos.mean():.4f}"
                delta = f"{100 * (accuracy - reference[1]):+.2f}"
                changed = f"{int((predictions != reference[2]).sum())} of {len(predictions)}"
            lines.append(f"| {name} | {summary.n_rows} | {label} | {seconds:.1f} ({summary.n_rows / seconds:.1f}) | "
                         f"{cos_text} | {check} | {accuracy:.4f} | {delta} | {changed} |")
    return lines


def int8_report(args, work: Path) -> list[str]:
    """``--int8``: speed (random-init backbones, generated JPEGs) and fidelity (real weights, real data)."""
    os.environ["FEATUREBENCH_CACHE"] = str(work / "cache")  # calibration measured from scratch
    data = work / "images"
    if not data.exists():
        make_images(data, args.images)
    extra = [f"- Load average at the start: {loadavg()}; repeat {args.repeat} (best kept)", ""]
    lines = header("int8 (NNCF post-training quantisation, OpenVINO) vs fp32", sys.argv[1:], extra)
    lines += ["## Speed", "",
              f"Random-init weights (`--weights none`: no offline ImageNet weights for these here; speed does "
              f"not depend on the weights' values), {len(image_paths(data))} generated JPEGs (long side 300-1200 "
              "px). int8 is calibrated on the train slice of the same images. Build, conversion, calibration "
              "and the first call are left out of img/s for every variant alike.", ""]
    lines += _int8_speed(args, data, work)
    if not args.skip_fidelity:
        lines += ["", "## Fidelity", "",
                  "EfficientNet-Lite0 with its real ImageNet weights; each dataset's int8 model is calibrated on "
                  "its own train slice (seed 42); GridSearchCV(LogisticRegression, C in {0.01, 0.1, 1, 10, 100}, "
                  "cv=3) on the stored 75/25 split (one split).", ""]
        lines += _int8_fidelity(work)
    lines += ["", f"Load average at the end: {loadavg()}."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=300, help="generated JPEGs (plus the ../shared sample photos)")
    parser.add_argument("--vgg-images", type=int, default=96, help="images used for vgg16 (slow: ~3 img/s)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ",".join(MODELS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant (best kept; the machine is shared)")
    parser.add_argument("--out", help="Markdown file to write (default: results/bench_extract*_<CPU class>.md)")
    parser.add_argument("--rss-check", action="store_true", help="peak RSS at 1,000 vs 10,000 images (Coral TFLite)")
    parser.add_argument("--rss-images", default="1000,10000")
    parser.add_argument("--levers", action="store_true", help="measure the tuning levers instead")
    parser.add_argument("--skip-sizes", action="store_true", help="--levers without the image-size scaling runs")
    parser.add_argument("--fidelity", action="store_true", help="engines, fast decode and bf16: feature and accuracy checks")
    parser.add_argument("--decode", action="store_true", help="JPEG decoders and the decode share of CPU time")
    parser.add_argument("--isa", help="cap oneDNN's ISA (ONEDNN_MAX_CPU_ISA, e.g. AVX2) to approximate an older CPU class")
    parser.add_argument("--int8", action="store_true", help="int8 vs fp32: speed and downstream accuracy")
    parser.add_argument("--skip-fidelity", action="store_true", help="--int8 without the real-data accuracy runs")
    parser.add_argument("--keep", help="keep the generated images and files in this folder")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(json.loads(args.worker))
        return
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    argv = sys.argv[1:]
    from featurebench.extractors.cpu import cpu_class

    machine = cpu_class()  # results/ keeps one table per CPU class: runs on another class never overwrite it
    if args.isa:  # oneDNN (OpenVINO's and TensorFlow's convolutions) capped below what the CPU has
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.isa.upper()  # the workers inherit it
        machine = f"{machine}-capped-{args.isa.lower()}"
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_extract-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.rss_check:
            lines, default_out = rss_check(args, work), f"results/bench_extract_rss_{machine}.md"
        elif args.levers:
            lines, default_out = levers(args, work), f"results/bench_extract_levers_{machine}.md"
        elif args.fidelity:
            lines, default_out = fidelity(args, work), f"results/bench_extract_fidelity_{machine}.md"
        elif args.decode:
            lines, default_out = decode_report(args, work), f"results/bench_extract_decode_{machine}.md"
        elif args.int8:
            lines, default_out = int8_report(args, work), f"results/bench_extract_int8_{machine}.md"
        else:
            data = work / "images"
            if not data.exists():
                make_images(data, args.images)
            extra = [f"- Images: {len(image_paths(data))} ({args.images} generated JPEGs, long side 300-1200 px, "
                     f"+ ../shared/images/samples); vgg16 uses the first {args.vgg_images}",
                     f"- Load average at the start: {loadavg()}; repeat {args.repeat} (best kept)",
                     "- Timing: in-process, TF import + model build + first (tracing) call excluded from all three; "
                     "each variant in its own subprocess (peak RSS = ru_maxrss of that process)", ""]
            lines = header("Extraction throughput: classic script vs featurebench extract vs model-only", argv, extra)
            lines += main_benchmark(args, data, work)
            default_out = f"results/bench_extract_{machine}.md"
        out = Path(args.out or REPO / default_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
