"""Text-embedding throughput: recgoat's path (template rendering + ``encode_texts``) vs a bare
``SentenceTransformer.encode`` of the same texts, in one process, same model, same batch size.

Runs are interleaved (ours, bare, bare, ours, ...) so that load from other processes hits both alike, and the
median of the repeats is reported. Goal: ``ratio = ours / bare >= 0.9``.

    python -m benchmarks.speed.embed_throughput --n 2000 --batch-size 64 --repeats 3 --threads 1

(from the repository root, with recgoat installed or ``PYTHONPATH=.``; ``--device cuda`` for a GPU).

Prints one JSON object: items/s of both paths (per wall second and per process-CPU second), their ratios, and
the settings.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np

ADJECTIVES = ["red", "navy blue", "matte black", "vintage", "rustic", "minimalist", "sporty", "modern", "oak", "steel"]
NOUNS = ["mug", "desk lamp", "running sneaker", "hiking backpack", "wrist watch", "dining chair", "headphones", "vase"]
CLAUSES = [
    "Dishwasher safe and built to last.",
    "Arrives flat-packed and assembles in ten minutes.",
    "Rubber outsole with a good grip on wet pavement.",
    "Padded straps and a laptop sleeve for daily commutes.",
    "Sapphire glass, water resistant to fifty metres.",
    "Soft cushions and noise cancelling for long flights.",
    "Hand-finished glaze; every piece is slightly different.",
]


def synthetic_catalog(n_items: int, seed: int = 0) -> dict[str, list[str]]:
    """Product titles and descriptions of varied length (1 to 6 clauses), deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    titles, descriptions = [], []
    for _ in range(n_items):
        adjective = ADJECTIVES[rng.integers(len(ADJECTIVES))]
        noun = NOUNS[rng.integers(len(NOUNS))]
        titles.append(f"{adjective.title()} {noun.title()}")
        n_clauses = int(rng.integers(1, 7))
        descriptions.append(" ".join(CLAUSES[int(k)] for k in rng.integers(len(CLAUSES), size=n_clauses)))
    return {"title": titles, "description": descriptions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of synthetic items")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default="minilm", help="alias, cached hub name or folder")
    parser.add_argument(
        "--fp16", action=argparse.BooleanOptionalAction, default=True,
        help="on CUDA, run both paths under fp16 autocast (same precision either way; ignored on CPU)",
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from recgoat_cli.encoders.text import encode_texts, load_text_model, render_item_texts

    model, spec, info = load_text_model(args.model, args.device)
    catalog = synthetic_catalog(args.n)
    template = "{title}. {description}"
    prepared_texts, _ = render_item_texts(catalog, template, args.n)

    use_fp16 = args.fp16 and args.device.startswith("cuda")

    def ours() -> np.ndarray:
        texts, _ = render_item_texts(catalog, template, args.n)
        return encode_texts(
            model,
            texts,
            batch_size=args.batch_size,
            prefix=spec.passage_prefix,
            device=args.device,
            fp16_on_cuda=use_fp16,
        )

    def bare() -> np.ndarray:
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_fp16):
            return model.encode(
                [spec.passage_prefix + text for text in prepared_texts],
                batch_size=args.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
            )

    # Wall time is what a user waits for; process CPU time is far less disturbed by other processes on a shared
    # machine, so both are reported.
    seconds: dict[str, list[float]] = {"ours": [], "bare": []}
    cpu_seconds: dict[str, list[float]] = {"ours": [], "bare": []}
    outputs = {}
    # Warm-up under the timed precision (lazy initialisation, CUDA kernels and autocast caches), then alternate
    # which path goes first so that neither always runs right after the other.
    encode_texts(model, prepared_texts[: args.batch_size], device=args.device, fp16_on_cuda=use_fp16)
    for repeat in range(args.repeats):
        order = (("ours", ours), ("bare", bare)) if repeat % 2 == 0 else (("bare", bare), ("ours", ours))
        for name, run in order:
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            start, cpu_start = time.perf_counter(), time.process_time()
            outputs[name] = run()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds[name].append(time.perf_counter() - start)
            cpu_seconds[name].append(time.process_time() - cpu_start)

    rates = {name: args.n / statistics.median(times) for name, times in seconds.items()}
    cpu_rates = {name: args.n / statistics.median(times) for name, times in cpu_seconds.items()}
    result = {
        "n_items": args.n,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "threads": args.threads,
        "device": args.device,
        "fp16": use_fp16,
        "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") else None,
        "model": info["name"],
        "dim": info["dim"],
        "ours_items_per_s": round(rates["ours"], 1),
        "bare_items_per_s": round(rates["bare"], 1),
        "ratio": round(rates["ours"] / rates["bare"], 3),
        "ours_items_per_cpu_s": round(cpu_rates["ours"], 1),
        "bare_items_per_cpu_s": round(cpu_rates["bare"], 1),
        "cpu_ratio": round(cpu_rates["ours"] / cpu_rates["bare"], 3),
        "seconds": {name: [round(t, 3) for t in times] for name, times in seconds.items()},
        "cpu_seconds": {name: [round(t, 3) for t in times] for name, times in cpu_seconds.items()},
        "max_abs_diff": float(np.abs(outputs["ours"].astype(np.float32) - outputs["bare"].astype(np.float32)).max()),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
