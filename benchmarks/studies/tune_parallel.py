"""Tune, then seed and ablate, several (dataset, model) studies at once on a pool of GPU and CPU slots.

Each study follows ``recgoat tune``'s protocol with the tune stage's own functions (``parse_grid``,
``trial_configs``, ``choose_trial``, ``results_markdown``; ``run_train`` and ``run_evaluate``): every grid point
trains at the plan's tune seed and is scored on validation; once all of a study's trials have ended, the best one
is chosen over the same rows ``run_tune`` builds, and only then is its test split read. The chosen configuration
is then trained at each of the plan's seeds, and so is each ablation (a variant equal to the chosen configuration
is skipped), each followed by one test evaluation.

Runs go to slots, one process and one torch thread each: ``--gpu-slots`` share the GPU, ``--cpu-slots``
compute on the CPU. The dataset is read with numpy (no polars: the GPU machine lacks it), from the embed and
build-graph artifacts already under ``--workdir``. No run starts after ``--deadline`` seconds; runs still
going at ``--deadline + --grace`` are killed and reported as unfinished.

    python3 -m benchmarks.studies.tune_parallel --plan benchmarks/studies/plans/accuracy.toml --data-root DATA --workdir RUNS \\
        --out OUT [--gpu-slots 8] [--cpu-slots 6] [--deadline 480] [--grace 60] [--epochs N]

OUT receives runs.jsonl (a line per ended run, written as it ends), trials.csv (every trial of every study),
summary.md (tables: tuning, chosen configuration over seeds, ablations), ``<dataset>_<model>_results.md`` per
chosen study (``recgoat tune``'s results.md for the same grid: the same trials, artifacts and choice; its test
line lists recall and NDCG at 10 and 20 only) and logs.tar.gz.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import tarfile
import tempfile
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import context_from_numpy, module_command, module_env

METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")


def run_one(spec: dict) -> dict:
    """One train (+ test evaluation) in this process; the dict that becomes a runs.jsonl line."""
    import torch

    from recgoat_cli.config import EvalConfig, TrainConfig
    from recgoat_cli.stages.evaluate import run_evaluate
    from recgoat_cli.stages.train import run_train

    torch.set_num_threads(1)
    ctx = context_from_numpy(Path(spec["dataset_dir"]), Path(spec["workdir"]))
    config = TrainConfig(**spec["config"])
    start = time.perf_counter()
    trained, cached = run_train(ctx, config, ctx.store.get("build-graph"))
    summary = trained.manifest.summary
    result = {"train_artifact": trained.id, "cached": cached, "best_epoch": summary["best_epoch"], "epochs_run": summary["epochs_run"],
              "valid": summary["best_valid"][config.val_metric], "mean_epoch_seconds": summary["mean_epoch_seconds"]}
    if spec["evaluate"]:
        evaluated, _ = run_evaluate(ctx, EvalConfig(ks=(10, 20), split="test", device=config.device), trained)
        result["test"] = {k: evaluated.manifest.summary["metrics"][k] for k in METRICS}
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    return result


@dataclass
class Run:
    study: str
    kind: str  # trial | test | seed | ablation
    name: str
    priority: int
    config: dict
    evaluate: bool
    devices: tuple[str, ...]
    order: int = 0
    result: dict | None = None
    status: str = "queued"  # queued | running | done | failed | unfinished
    device: str = ""
    process: subprocess.Popen | None = None
    log: Path | None = None
    started: float = 0.0


@dataclass
class Study:
    key: str
    dataset_dir: Path
    model: str
    grid: list[str]
    devices: tuple[str, ...]
    ablation_devices: tuple[str, ...]
    ablations: dict[str, dict]
    trials: list[Run] = field(default_factory=list)
    chosen: Run | None = None
    chosen_trial: int | None = None
    followups: bool = False


def build_studies(plan: dict, data_root: Path, epochs: int | None) -> list[Study]:
    from recgoat_cli.config import TrainConfig
    from recgoat_cli.stages.tune import parse_grid, trial_configs

    studies = []
    for spec in plan["study"]:
        devices = tuple(spec.get("devices", ("cuda", "cpu")))
        study = Study(spec.get("name", f"{spec['dataset']}:{spec['model']}"), data_root / spec["dataset"], spec["model"], spec["grid"],
                      devices, tuple(spec.get("ablation_devices", devices)), spec.get("ablations", {}))
        base = TrainConfig(model=spec["model"], epochs=epochs or plan["epochs"], patience=plan["patience"], seed=plan["tune_seed"], **spec.get("fixed", {}))
        for number, config in enumerate(trial_configs(base, parse_grid(spec["grid"]), "grid", None, 0), 1):
            # the options that make the train artifact's id; the slot's device is added per run
            study.trials.append(Run(study.key, "trial", f"trial {number}", 0, config.semantic_dump(), False, study.devices))
        studies.append(study)
    return studies


def trial_rows(study: Study) -> list[dict]:
    """The study's finished trials as ``recgoat tune`` lists them (the rows of ``stages.tune.run_tune``)."""
    from recgoat_cli.stages.tune import grid_text, parse_grid

    names = list(parse_grid(study.grid))
    return [
        {"trial": number, **{name: grid_text(run.config[name]) for name in names}, f"valid_{run.config['val_metric']}": run.result["valid"],
         "best_epoch": run.result["best_epoch"], "train_artifact": run.result["train_artifact"]}
        for number, run in enumerate(study.trials, 1) if run.status == "done"
    ]


def metric_column(rows: list[dict]) -> str:
    return next(column for column in rows[0] if column.startswith("valid_"))


class Scheduler:
    def __init__(self, options, studies: list[Study], plan: dict):
        self.options, self.studies, self.plan = options, studies, plan
        self.slots: list[list] = [["cuda", None] for _ in range(options.gpu_slots)] + [["cpu", None] for _ in range(options.cpu_slots)]
        self.queue: list[Run] = []
        self.logs = Path(tempfile.mkdtemp(prefix="tune_parallel_logs_"))
        self.start = time.monotonic()
        self.counter = 0
        for study in studies:
            for run in study.trials:
                self.enqueue(run)

    def enqueue(self, run: Run) -> None:
        self.counter += 1
        run.order = self.counter
        if not self.options.gpu_slots:
            run.devices = ("cpu",)
        self.queue.append(run)

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def say(self, message: str) -> None:
        line = f"[{self.elapsed():6.0f} s] {message}"
        print(line, flush=True)
        with open(self.options.out / "driver.log", "a") as handle:
            handle.write(line + "\n")

    def launch(self, slot: list, run: Run) -> None:
        study = next(s for s in self.studies if s.key == run.study)
        run.device = slot[0]
        spec = {"dataset_dir": str(study.dataset_dir), "workdir": str(self.options.workdir), "evaluate": run.evaluate,
                "config": run.config | {"device": run.device}}
        run.log = self.logs / f"{run.order:03d}_{run.study.replace(':', '_')}_{run.name.replace(' ', '_')}.log"
        env = module_env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        run.process = subprocess.Popen(module_command("benchmarks.studies.tune_parallel", "--run-one", json.dumps(spec)), stdout=subprocess.PIPE,
                                       stderr=open(run.log, "w"), env=env, text=True, start_new_session=True)
        run.status, run.started, slot[1] = "running", time.monotonic(), run
        self.say(f"start {run.study} {run.name} on {run.device}")

    def collect(self, slot: list) -> None:
        run = slot[1]
        if run is None or run.process.poll() is None:
            return
        out = run.process.stdout.read().strip().splitlines()
        slot[1] = None
        if run.process.returncode == 0 and out:
            run.result, run.status = json.loads(out[-1]), "done"
            self.say(f"done  {run.study} {run.name}: valid {run.result['valid']:.4f}"
                     + (f", test recall@20 {run.result['test']['recall@20']:.4f}" if "test" in run.result else "")
                     + f" ({run.result['wall_seconds']} s, {run.result['epochs_run']} epochs)")
        else:
            run.status = "failed"
            self.say(f"FAIL  {run.study} {run.name} (exit {run.process.returncode}); see {run.log.name}")
        self.record(run)
        self.advance()

    def record(self, run: Run) -> None:
        line = {"study": run.study, "kind": run.kind, "name": run.name, "status": run.status, "device": run.device,
                "seed": run.config["seed"], "config": run.config, **(run.result or {})}
        with open(self.options.out / "runs.jsonl", "a") as handle:
            handle.write(json.dumps(line) + "\n")

    def advance(self) -> None:
        """A study whose trials have all ended chooses (on validation), then queues its test and follow-up runs."""
        from recgoat_cli.stages.tune import choose_trial

        for study in self.studies:
            if study.chosen is None and all(r.status in ("done", "failed") for r in study.trials):
                rows = trial_rows(study)
                if not rows:
                    continue
                study.chosen_trial = choose_trial(rows, metric_column(rows))["trial"]
                best = study.trials[study.chosen_trial - 1]
                study.chosen = Run(study.key, "test", "chosen (test read once)", 1, best.config, True, study.devices)
                self.enqueue(study.chosen)
                self.say(f"chose {study.key} {best.name} on validation ({best.result['valid']:.4f})")
            if study.chosen is not None and not study.followups:
                study.followups = True
                chosen = study.chosen.config
                for seed in self.plan["seeds"]:
                    self.enqueue(Run(study.key, "seed", f"seed {seed}", 2, chosen | {"seed": seed}, True, study.devices))
                variants = {}
                for name, override in study.ablations.items():
                    variant = chosen | {k: tuple(v) if isinstance(v, list) else v for k, v in override.items()}
                    if variant == chosen:
                        self.say(f"skip  {study.key} {name}: the chosen configuration already is it")
                    else:
                        variants[name] = variant
                for position, seed in enumerate(self.plan["seeds"]):
                    for name, variant in variants.items():
                        self.enqueue(Run(study.key, "ablation", f"{name} seed {seed}", 3 + position, variant | {"seed": seed}, True, study.ablation_devices))

    def next_run(self, kind: str) -> Run | None:
        ready = [r for r in self.queue if kind in r.devices]
        if not ready:
            return None
        run = min(ready, key=lambda r: (r.priority, r.order))
        self.queue.remove(run)
        return run

    def loop(self) -> None:
        while True:
            for slot in self.slots:
                self.collect(slot)
            running = [slot for slot in self.slots if slot[1] is not None]
            if self.elapsed() < self.options.deadline:
                for slot in self.slots:
                    if slot[1] is None and (run := self.next_run(slot[0])) is not None:
                        self.launch(slot, run)
                running = [slot for slot in self.slots if slot[1] is not None]
            if not running and (self.elapsed() >= self.options.deadline or not self.queue):
                break
            if self.elapsed() >= self.options.deadline + self.options.grace:
                for slot in running:
                    os.killpg(slot[1].process.pid, signal.SIGKILL)
                    slot[1].process.wait()
                    slot[1].status = "unfinished"
                    self.say(f"kill  {slot[1].study} {slot[1].name} at the deadline")
                    self.record(slot[1])
                    slot[1] = None
                break
            time.sleep(1.0)
        for run in self.queue:
            run.status = "unfinished"


def mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.mean(values):.4f} ± {statistics.pstdev(values):.4f}" if len(values) > 1 else f"{values[0]:.4f}"


def write_reports(out: Path, studies: list[Study]) -> None:
    from recgoat_cli.stages.tune import grid_text, results_markdown

    for study in studies:
        if study.chosen is not None and study.chosen.result:
            rows = [row | {"chosen": row["trial"] == study.chosen_trial} for row in trial_rows(study)]
            chosen_row = next(row for row in rows if row["chosen"])
            text = results_markdown(rows, metric_column(rows), chosen_row, study.chosen.result["test"])
            (out / f"{study.key.replace(':', '_')}_results.md").write_text(text, encoding="utf-8")

    with open(out / "trials.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study", "trial", "status", "params", "valid_recall@20", "best_epoch", "epochs_run", "s_per_epoch", "device", "chosen", "train_artifact"])
        for study in studies:
            for run in study.trials:
                params = {p.partition("=")[0]: grid_text(run.config[p.partition("=")[0]]) for p in study.grid}
                result = run.result or {}
                chosen = study.chosen is not None and run.config == study.chosen.config
                writer.writerow([study.key, run.name, run.status, json.dumps(params), result.get("valid", ""), result.get("best_epoch", ""),
                                 result.get("epochs_run", ""), result.get("mean_epoch_seconds", ""), run.device, "yes" if chosen else "", result.get("train_artifact", "")])
    lines = ["# tune_parallel summary", ""]
    for study in studies:
        lines += [f"## {study.key}", "", "| trial | params | status | valid R@20 | best epoch (run) | s/epoch | device |", "|---|---|---|---|---|---|---|"]
        for run in study.trials:
            params = ", ".join(f"{p.partition('=')[0]}={grid_text(run.config[p.partition('=')[0]])}" for p in study.grid)
            r = run.result or {}
            mark = " **chosen**" if study.chosen is not None and run.config == study.chosen.config else ""
            lines.append(f"| {run.name}{mark} | {params} | {run.status} | {r.get('valid', float('nan')):.4f} | {r.get('best_epoch', '-')} ({r.get('epochs_run', '-')}) | {r.get('mean_epoch_seconds', float('nan')):.2f} | {run.device} |")
        if study.chosen is not None and study.chosen.result:
            lines += ["", "Chosen, test read once: " + ", ".join(f"{k} {v:.4f}" for k, v in study.chosen.result["test"].items())]
        lines.append("")
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def write_seed_tables(out: Path, studies: list[Study], runs_file: Path) -> None:
    rows = [json.loads(line) for line in runs_file.read_text().splitlines()] if runs_file.is_file() else []
    lines = ["", "# Seeds (test split, mean ± population std)", "", "| study | variant | seeds done | " + " | ".join(METRICS) + " | valid R@20 | best epochs |", "|---|---|---|" + "---|" * (len(METRICS) + 2)]
    for study in studies:
        variants: dict[str, list[dict]] = {}
        for row in rows:
            if row["study"] == study.key and row["kind"] in ("seed", "ablation") and row["status"] == "done":
                variants.setdefault("chosen" if row["kind"] == "seed" else row["name"].rsplit(" seed ", 1)[0], []).append(row)
        for name, picked in variants.items():
            picked.sort(key=lambda r: r["seed"])
            cells = [mean_std([r["test"][k] for r in picked]) for k in METRICS]
            lines.append(f"| {study.key} | {name} | {', '.join(str(r['seed']) for r in picked)} | "
                         + " | ".join(cells) + f" | {mean_std([r['valid'] for r in picked])} | {', '.join(str(r['best_epoch']) for r in picked)} |")
    with open(out / "summary.md", "a") as handle:
        handle.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    parser.add_argument("--plan", type=Path)
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--gpu-slots", type=int, default=0)
    parser.add_argument("--cpu-slots", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=float("inf"), help="seconds after which no run starts")
    parser.add_argument("--grace", type=float, default=60.0, help="seconds after the deadline at which running runs are killed")
    parser.add_argument("--epochs", type=int, help="override the plan's epochs (smoke tests)")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the plan's seeds")
    parser.add_argument("--only", nargs="+", help="studies to run, e.g. tiktok:recgoat")
    options = parser.parse_args()
    if options.run_one:
        print(json.dumps(run_one(json.loads(options.run_one))), flush=True)
        return
    plan = tomllib.loads(options.plan.read_text())
    if options.seeds:
        plan["seeds"] = options.seeds
    if options.only:
        plan["study"] = [s for s in plan["study"] if s.get("name", f"{s['dataset']}:{s['model']}") in options.only]
    options.out.mkdir(parents=True, exist_ok=True)
    studies = build_studies(plan, options.data_root, options.epochs)
    scheduler = Scheduler(options, studies, plan)
    scheduler.say(f"{sum(len(s.trials) for s in studies)} trials in {len(studies)} studies; {options.gpu_slots} GPU and {options.cpu_slots} CPU slots")
    try:
        scheduler.loop()
    finally:
        write_reports(options.out, studies)
        write_seed_tables(options.out, studies, options.out / "runs.jsonl")
        with tarfile.open(options.out / "logs.tar.gz", "w:gz") as archive:
            archive.add(scheduler.logs, arcname="logs")
        scheduler.say(f"ended; {len(scheduler.queue)} runs never started")


if __name__ == "__main__":
    main()
