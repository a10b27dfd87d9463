"""The report's look-inside sections of a run: its gallery of mistakes and its data audit.

The gallery reads the run's ``predictions.csv`` (written by ``fit``) and shows the wrong test
images, most confident first, as small inlined JPEG thumbnails (each capped in bytes, at most
``max_items`` of them), with the most-confused class pairs and examples of each. With
``heatmaps=True`` the thumbnail is the heatmap overlay of the predicted class (loads the
run's model; needs TensorFlow); a run whose model cannot give one says why. The audit
section renders the run's ``audit.json`` (``featurebench audit --run``).
All text is escaped by the template; thumbnails are ``data:`` URIs.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Callable

from featurebench.errors import FeaturebenchError
from featurebench.explain.overlay import image_thumbnail, overlay, thumbnail_uri
from featurebench.report.collect import Run

#: Most wrong images shown per run, most-confused pairs, examples per pair.
MAX_MISTAKES = 24
MAX_PAIRS = 5
PAIR_EXAMPLES = 4
MAX_AUDIT_ITEMS = 8


def _image_root(run: Run) -> Path | None:
    """Where the run's test image paths are relative to (the test file's source for --test-file runs)."""
    m = run.metrics
    if m.get("test_feature_file"):
        try:
            import h5py

            with h5py.File(m["test_feature_file"], "r") as h5:
                source = h5.attrs.get("source", "")
        except OSError:
            return None
        source = source.decode() if isinstance(source, bytes) else str(source)
    else:
        p = m.get("provenance") or {}
        source = str(p.get("source") or (p.get("data") or {}).get("source") or "")  # fit / finetune runs
    return Path(source) if source else None


def _read_predictions(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _heatmap_thumbnailer(run: Run) -> tuple[Callable[[Path], str | None] | None, str]:
    """A function making the predicted-class overlay thumbnail of an image, or None and why not."""
    from featurebench.data.decode import SkipImage
    from featurebench.data.pipeline import DecodeOptions, load_image
    from featurebench.explain.explainer import load_explainer

    try:
        explainer = load_explainer(run.path)
    except FeaturebenchError as exc:
        return None, str(exc)
    options = DecodeOptions(tuple(explainer.input_size), explainer.resize)

    def make(path: Path) -> str | None:
        try:
            image = load_image(path, options)
        except SkipImage:
            return None
        return thumbnail_uri(overlay(image, explainer.explain(image, top=1).maps[0]))

    return make, f"heatmaps: {explainer.method} on layer {explainer.layer}, predicted class"


def mistakes_view(run: Run, heatmaps: bool = False, max_items: int = MAX_MISTAKES) -> dict[str, Any] | None:
    """The gallery of mistakes of ``run``, or None when the run has no ``predictions.csv``."""
    path = run.path / "predictions.csv"
    if not path.is_file():
        return None
    try:
        rows = _read_predictions(path)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return {"items": [], "pairs": [], "n_wrong": 0, "n_test": 0, "shown": 0, "score_kind": "score",
                "notes": [f"predictions.csv unreadable: {exc}"]}
    wrong = [r for r in rows if r.get("true") != r.get("predicted")]

    def confidence(r: dict[str, str]) -> float:
        try:
            return float(r.get("score") or "nan")
        except ValueError:
            return float("nan")

    wrong.sort(key=lambda r: -confidence(r) if confidence(r) == confidence(r) else float("inf"))
    root = _image_root(run)
    notes: list[str] = []
    thumb: Callable[[Path], str | None] = image_thumbnail
    if heatmaps and wrong:
        made, note = _heatmap_thumbnailer(run)
        notes.append(note)
        thumb = made or thumb
    cache: dict[str, str | None] = {}

    def item(r: dict[str, str]) -> dict[str, Any]:
        rel = r.get("path") or ""
        if rel not in cache:
            cache[rel] = thumb(root / rel) if root is not None and rel else None
        return {"path": rel, "true": r.get("true", ""), "predicted": r.get("predicted", ""),
                "score": f"{confidence(r):.3f}", "src": cache[rel]}

    items = [item(r) for r in wrong[:max_items]]
    counts: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in wrong:
        counts.setdefault((r["true"], r["predicted"]), []).append(r)
    ranked = sorted(counts.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:MAX_PAIRS]
    pairs = [{"true": t, "predicted": p, "count": len(rs), "examples": [item(r) for r in rs[:PAIR_EXAMPLES]]}
             for (t, p), rs in ranked]
    if items and not any(i["src"] for i in items):
        notes.append(f"test images not found under {root or 'the feature file source'}: thumbnails left out")
    return {"items": items, "pairs": pairs, "n_wrong": len(wrong), "n_test": len(rows), "notes": notes,
            "shown": len(items), "score_kind": run.metrics.get("score_kind") or "score"}


def audit_view(run: Run, max_items: int = MAX_AUDIT_ITEMS) -> dict[str, Any] | None:
    """The run's data audit (``audit.json``) with a few thumbnails per finding, or None."""
    path = run.path / "audit.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return _audit_view(record, max_items)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return {"error": f"audit.json unreadable: {type(exc).__name__}: {exc}"}


def _audit_view(record: dict[str, Any], max_items: int) -> dict[str, Any]:
    root = Path(record["source"]) if record.get("source") else None
    dup = record["near_duplicates"]

    def src(rel: str) -> str | None:
        return image_thumbnail(root / rel) if root is not None and rel else None

    labels = record.get("label_issues") or {}
    acc = dup.get("accuracy") or {}
    return {
        "error": "",
        "threshold": dup.get("threshold"), "n_pairs": len(dup.get("pairs", [])),
        "test_rows": dup.get("test_rows_affected"), "n_exact": len(dup.get("exact_duplicates", [])),
        "acc_all": _pct(acc.get("all")), "acc_without": _pct(acc.get("without_duplicates")),
        "acc_source": acc.get("source", ""),
        "pairs": [{"train": p["train_path"], "test": p["test_path"], "similarity": f"{p['similarity']:.3f}",
                   "train_src": src(p["train_path"]), "test_src": src(p["test_path"])}
                  for p in dup.get("pairs", [])[:max_items]],
        "label_method": labels.get("method", ""), "label_skipped": labels.get("skipped", ""),
        "n_labels": len(labels.get("rows", [])),
        "labels": [{"path": r["path"], "given": r["given"], "suggested": r["suggested"],
                    "confidence": f"{r['self_confidence']:.3f}", "src": src(r["path"])}
                   for r in labels.get("rows", [])[:max_items]],
        "n_outliers": (record.get("outliers") or {}).get("n_flagged", 0),
        "outliers": [{"path": r["path"], "label": r["label"], "distance": f"{r['distance']:.3f}", "src": src(r["path"])}
                     for r in (record.get("outliers") or {}).get("rows", [])[:max_items]],
        "imbalance": (record.get("imbalance") or {}).get("ratio_largest_to_smallest"),
    }


def _pct(value: Any) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else "—"
