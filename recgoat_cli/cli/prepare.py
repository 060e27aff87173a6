"""``recgoat prepare``: raw interactions (CSV/TSV/Parquet or RecBole atomic files) -> a dataset folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from recgoat_cli.cli.common import Output, handle_errors
from recgoat_cli.cli.options import DataRootOpt, ForceOpt, JsonOpt, QuietOpt


@handle_errors
def prepare(
    source: Annotated[Path, typer.Option("--input", "-i", help="interaction file (CSV/TSV/Parquet) or RecBole atomic folder")],
    name: Annotated[str, typer.Option("--name", help="dataset name; the folder is <data-root>/<name> unless --out")],
    out: Annotated[Optional[Path], typer.Option("--out", help="output dataset folder")] = None,
    data_root: DataRootOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, csv, tsv, parquet or recbole")] = "auto",
    user_col: Annotated[str, typer.Option("--user-col")] = "user_id",
    item_col: Annotated[str, typer.Option("--item-col")] = "item_id",
    rating_col: Annotated[Optional[str], typer.Option("--rating-col", help="'' for none")] = "rating",
    time_col: Annotated[Optional[str], typer.Option("--time-col", help="'' for none")] = "timestamp",
    sep: Annotated[Optional[str], typer.Option("--sep", help="column separator for csv/tsv")] = None,
    rating_threshold: Annotated[Optional[float], typer.Option("--rating-threshold", help="keep ratings >= this")] = None,
    k_core: Annotated[int, typer.Option("--k-core", help="shorthand for --user-core K --item-core K")] = 0,
    user_core: Annotated[Optional[int], typer.Option("--user-core")] = None,
    item_core: Annotated[Optional[int], typer.Option("--item-core")] = None,
    split: Annotated[str, typer.Option("--split", help="random (per-user 8:1:1), temporal or loo")] = "random",
    ratios: Annotated[tuple[float, float, float], typer.Option("--ratios", help="train valid test")] = (0.8, 0.1, 0.1),
    seed: Annotated[int, typer.Option("--seed")] = 2024,
    item_text: Annotated[Optional[list[Path]], typer.Option("--item-text", help="item side-info table(s), merged on the item id")] = None,
    item_text_key: Annotated[
        Optional[list[str]], typer.Option("--item-text-key", help="column holding the original item id: one for all tables, or one per --item-text")
    ] = None,
    item_columns: Annotated[Optional[list[str]], typer.Option("--item-text-columns", help="side-info columns to keep")] = None,
    images: Annotated[Optional[Path], typer.Option("--images", help="folder of images named <original item id>.<ext>")] = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Turn raw interactions into the MMRec dataset layout: filters, k-core, id maps and a seeded split."""
    from recgoat_cli.data.dataset import default_data_root
    from recgoat_cli.stages.prepare import PrepareOptions, run_prepare
    from recgoat_cli.errors import UserError

    if k_core and (user_core is not None or item_core is not None):
        raise UserError(
            f"--k-core {k_core} is shorthand for --user-core {k_core} --item-core {k_core}, so it conflicts with "
            "--user-core/--item-core; pass either --k-core or the two separate flags."
        )
    output = Output(as_json, quiet)
    target = out if out is not None else (data_root or default_data_root()) / name
    options = PrepareOptions(
        name=name,
        fmt=fmt,
        user_col=user_col,
        item_col=item_col,
        rating_col=rating_col or None,
        time_col=time_col or None,
        sep=sep,
        rating_threshold=rating_threshold,
        user_core=user_core if user_core is not None else k_core,
        item_core=item_core if item_core is not None else k_core,
        split=split,
        ratios=tuple(ratios),
        seed=seed,
        item_text=tuple(item_text) if item_text else None,
        item_text_key=(item_text_key[0] if len(item_text_key) == 1 else tuple(item_text_key)) if item_text_key else None,
        item_text_columns=tuple(item_columns or ()),
        images=images,
        force=force,
    )
    summary = run_prepare(source, target, options)
    output.info(f"wrote dataset {name} to {target}")
    output.result({"dataset": name, "path": str(target), "summary": summary}, render=lambda p: _render(p))


def _render(payload: dict) -> None:
    summary = payload["summary"]
    counts = summary.get("counts", {})
    typer.echo(f"dataset {payload['dataset']} at {payload['path']}: {counts.get('users')} users, {counts.get('items')} items, {counts.get('interactions')} interactions")
    split = summary.get("split", {})
    for name in ("train", "valid", "test"):
        if name in split:
            typer.echo(f"  {name}: {split[name]}")
