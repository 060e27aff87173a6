"""What every stage function receives: the dataset, the artifact store and how to run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from recgoat_cli.artifacts.store import Artifact, ArtifactStore, write_manifest
from recgoat_cli.data.dataset import Dataset, dataset_key, load_dataset, resolve_dataset
from recgoat_cli.errors import UserError


@dataclass
class StageContext:
    dataset: Dataset
    store: ArtifactStore
    force: bool = False
    progress: bool = False

    @property
    def key(self) -> str:
        return self.store.dataset

    def cached(self, stage: str, artifact_id: str) -> Artifact | None:
        """The finished, verified artifact with this id, made the stage's latest; None when absent or --force.

        Under torchrun rank 0 looks and decides for every rank, so all ranks take the same branch.
        """
        from recgoat_cli import distributed

        if self.force:
            return None
        artifact = self.store.find_cached(stage, artifact_id) if distributed.is_main() else None
        if artifact is not None:
            self.store.set_latest(stage, artifact_id)
        if not distributed.broadcast_object(artifact is not None):
            return None
        return artifact or self.store.get(stage, artifact_id, verify=False)

    def publish(self, stage: str, artifact_id: str, write: Callable[[Path], None], *, force: bool | None = None) -> Artifact:
        """Rank 0 writes the artifact (``write(folder)`` into the store's atomic writer); every rank returns it.

        The other ranks of a torchrun job create no file or folder; they wait for rank 0 and read its manifest
        (the workdir is shared by all ranks). ``force`` (default: ``--force``) replaces an artifact of the same id.
        """
        from recgoat_cli import distributed

        if distributed.is_main():
            with self.store.writer(stage, artifact_id, force=self.force if force is None else force) as out:
                write(out)
        distributed.barrier()
        return self.store.get(stage, artifact_id, verify=distributed.is_main())


    def write_manifest(self, out: Path, stage: str, artifact_id: str, config, upstream: list[Artifact], **fields) -> None:
        """The manifest of an artifact of this dataset: ``config`` (a pydantic model, dumped as JSON), the upstream
        artifacts and the dataset's input hashes; ``fields`` (shapes, seed, summary) as ``write_manifest`` takes them."""
        write_manifest(
            out,
            stage=stage,
            artifact_id=artifact_id,
            dataset=self.key,
            config=config.model_dump(mode="json"),
            upstream=upstream,
            inputs=self.dataset.input_hashes(),
            **fields,
        )


def open_context(dataset: str, workdir: Path, data_root: Path | None = None, *, force: bool = False, progress: bool = False) -> StageContext:
    """The dataset (validated) and the artifact store of a stage run; every stage writes, so an unwritable
    workdir is refused here, before any work."""
    root = resolve_dataset(dataset, data_root)
    key = dataset_key(root)
    store = ArtifactStore(Path(workdir), key)
    loaded = load_dataset(root, key)
    store.check_writable()
    return StageContext(dataset=loaded, store=store, force=force, progress=progress)


def resolve_device(name: str):
    """The torch device for ``--device``; under torchrun, ``auto`` and ``cuda`` mean this rank's GPU (``LOCAL_RANK``)."""
    import torch

    from recgoat_cli import distributed

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} was asked for but no CUDA device is visible; use --device cpu or auto.")
    if name not in {"cpu"} and not name.startswith("cuda"):
        raise UserError(f"--device {name} is not known; use auto, cpu, cuda or cuda:N.")
    if distributed.requested() and name.startswith("cuda"):
        if name != "cuda":
            raise UserError(f"--device {name}: under torchrun every rank uses the GPU of its LOCAL_RANK; pass --device cuda or auto.")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device(name)


def split_csr(dataset: Dataset, *splits: str) -> tuple[np.ndarray, np.ndarray]:
    """CSR (indptr, indices) over users of the union of the given splits."""
    from recgoat_cli.eval.ranker import csr_from_pairs

    users = np.concatenate([dataset.split(s)[0] for s in splits])
    items = np.concatenate([dataset.split(s)[1] for s in splits])
    return csr_from_pairs(users, items, dataset.n_users, dataset.n_items)
