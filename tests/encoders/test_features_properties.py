"""Property tests of feature files with hostile headers: whatever shape (sides up to 2^40) and dtype an ``.npy`` header
declares over whatever bytes follow, ``load_feature_file`` returns a float32 ``[items, d]`` array or refuses with one
sentence naming the file, and never allocates by the declared shape; ``recgoat embed`` on such a file exits 0, or 2
with one sentence, no traceback and an unchanged workdir."""

from __future__ import annotations

import io
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recgoat_cli.cli.app import app
from recgoat_cli.encoders.features import load_feature_file
from recgoat_cli.errors import UserError

N_ITEMS = 5
MEMORY_LIMIT = 64 * 2**20  # a few small arrays at most; a declared 2^40-element array is far above
runner = CliRunner()

side = st.one_of(st.integers(0, 8), st.integers(0, 2**40))
dtypes = st.sampled_from(["<f4", "<f8", ">f4", "<f2", "<i8", "|u1", "|b1", "<U3", "<c8", "|O", "|V4"])


@st.composite
def npy_files(draw) -> tuple[bytes, tuple[int, ...], str]:
    """An .npy header (numpy's own writer) with a drawn shape and dtype, then either exactly the declared bytes
    (when that is small) or a drawn number of bytes."""
    shape = tuple(draw(st.lists(side, max_size=3)))
    if shape and draw(st.booleans()):
        shape = (N_ITEMS, *shape[1:])  # rows that match the dataset, so the other checks are reached
    if draw(st.integers(0, 3)) == 0:
        shape = (N_ITEMS, draw(st.integers(1, 8)))  # a plausible file, so loading is reached too
    dtype = draw(dtypes)
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": draw(st.booleans()), "shape": shape})
    declared = int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize
    exact = declared <= 4096 and draw(st.booleans())
    fill = draw(st.sampled_from([b"\x00", b"\x01", b"\x7f", b"\xff"]))
    data = fill * (declared if exact else draw(st.integers(0, 256)))
    header = bytearray(buffer.getvalue())
    if draw(st.integers(0, 7)) == 0:  # a damaged header: one byte of the dict text replaced
        header[draw(st.integers(10, len(header) - 1))] = draw(st.sampled_from(b"{}()'\",:\n x0"))
    return bytes(header) + data, shape, dtype


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(npy=npy_files())
def test_any_header_loads_as_float32_items_or_is_one_sentence_without_allocating_by_it(npy):
    raw, shape, dtype = npy
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image_feat.npy"
        path.write_bytes(raw)
        tracemalloc.start()
        try:
            features = load_feature_file(path, N_ITEMS, "image")
        except UserError as error:
            assert str(path) in str(error) and "\n" not in str(error)
            event("refused")
            return
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert peak < MEMORY_LIMIT, f"{peak} bytes traced for shape {shape} of {dtype}"
        event("loaded")
        assert features.dtype == np.float32 and features.shape == shape and len(shape) == 2 and shape[0] == N_ITEMS
        assert np.isfinite(features).all()


def small_dataset(folder: Path) -> None:
    rows = [f"{u}\t{(u + o) % N_ITEMS}\t{label}" for u in range(6) for o, label in zip(range(5), (0, 0, 0, 1, 2))]
    (folder / f"{folder.name}.inter").write_text("userID\titemID\tx_label\n" + "\n".join(rows) + "\n")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(npy=npy_files())
def test_embed_on_any_header_exits_0_or_2_with_one_sentence_and_an_unchanged_workdir(npy):
    raw, _, _ = npy
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gen"
        folder.mkdir()
        small_dataset(folder)
        (folder / "image_feat.npy").write_bytes(raw)
        workdir = Path(tmp) / "runs"

        result = runner.invoke(app, ["embed", "--dataset", str(folder), "--workdir", str(workdir), "--text-model", "none",
                                     "--image-encoder", "none", "--device", "cpu"])

        assert result.exit_code in (0, 2), f"exit {result.exit_code}: {result.output} {result.exception!r}"
        assert "Traceback" not in result.output
        if result.exit_code == 2:
            errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
            assert len(errors) == 1 and result.stderr.strip() == errors[0] and errors[0].endswith("."), result.stderr
            assert "image_feat.npy" in errors[0]
            assert not workdir.exists()
            event("exit 2")
        else:
            event("exit 0")
