"""The content score (``--content-score``): late fusion's z-scored content ranker inside RecGOAT's score.

Expected values are computed by hand from the definitions in ``recgoat_cli/model/content.py``.
"""

from __future__ import annotations

import math

import pytest
import torch

from recgoat_cli.model.content import ContentScore, content_tensors
from recgoat_cli.model.recgoat import RecGOAT
from recgoat_cli.train.loop import Batch, batch_loss_terms


def _tiny():
    # 3 items in 2 dims; column mean (1/3, 1/3); user 0 owns items 0 and 1, user 1 owns item 2, user 2 owns nothing
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    indptr = torch.tensor([0, 2, 3, 3])
    indices = torch.tensor([0, 1, 2])
    return features, indptr, indices


def test_content_tables_by_hand():
    features, indptr, indices = _tiny()
    tables = content_tensors("text", features, indptr, indices)
    # centred rows (2/3, -1/3), (-1/3, 2/3), (-1/3, -1/3), each scaled to unit length
    a, b = 2 / math.sqrt(5), -1 / math.sqrt(5)
    unit = torch.tensor([[a, b], [b, a], [-1 / math.sqrt(2), -1 / math.sqrt(2)]])
    mean = unit.mean(dim=0)
    assert torch.allclose(tables["content_items:text"], unit - mean, atol=1e-6)
    assert torch.allclose(tables["content_self:text"], (unit * (unit - mean)).sum(dim=1), atol=1e-6)
    # user 0's raw scores over the items, then their z-scores (population std over the 3 items)
    raw = (unit - mean) @ (unit[0] + unit[1])
    z = raw / raw.std(unbiased=False)
    assert torch.allclose(tables["content_users:text"][0] @ tables["content_items:text"].T, z, atol=1e-5)
    assert tables["content_scale:text"][0].item() == pytest.approx(1 / raw.std(unbiased=False).item(), rel=1e-5)
    # user 2 has no train item: a zero row and a zero scale, never NaN
    assert torch.equal(tables["content_users:text"][2], torch.zeros(2)) and tables["content_scale:text"][2].item() == 0.0


def test_positive_offset_makes_the_training_score_leave_one_out():
    features, indptr, indices = _tiny()
    graph = content_tensors("text", features, indptr, indices)
    content = ContentScore(["text"], init=1.0)
    with torch.no_grad():
        content.weight.fill_(0.7)
    users, items = torch.tensor([0]), torch.tensor([1])
    user_rows, item_rows = content.extend(graph, users, items, torch.zeros(1, 4), torch.zeros(1, 4))
    full = (user_rows * item_rows).sum(-1)
    trained = full - content.positive_offset(graph, users, items)
    # by hand: user 0's profile without item 1 is unit[0]; scaled by user 0's full-profile std
    unit_rows = graph["content_items:text"] + 0  # centred unit rows minus their mean
    a, b = 2 / math.sqrt(5), -1 / math.sqrt(5)
    unit = torch.tensor([[a, b], [b, a], [-1 / math.sqrt(2), -1 / math.sqrt(2)]])
    expected = 0.7 * (unit_rows[1] @ unit[0]) * graph["content_scale:text"][0]
    assert trained.item() == pytest.approx(expected.item(), rel=1e-5)
    assert full.item() != pytest.approx(trained.item())  # the self term was there to remove


def _model(content: bool) -> tuple[RecGOAT, dict]:
    torch.manual_seed(0)
    n_users, n_items = 3, 3
    features, indptr, indices = _tiny()
    users = torch.tensor([0, 0, 1])
    adjacency = torch.zeros(n_users + n_items, n_users + n_items)
    adjacency[users, n_users + indices] = 0.5
    adjacency[n_users + indices, users] = 0.5
    graph = {"adjacency": adjacency.to_sparse(), "feat:text": torch.nn.functional.normalize(features + 0.1, dim=1)}
    graph |= content_tensors("text", features, indptr, indices)
    model = RecGOAT(n_users, n_items, 4, 1, [["text", 2]], graphs=(), gat_layers=0, cmcl=False, oat=False, content_score=content)
    return model, graph


def test_recgoat_score_adds_the_weighted_content_score_and_trains_its_weight():
    with_content, graph = _model(True)
    without, _ = _model(False)
    without.load_state_dict({k: v for k, v in with_content.state_dict().items() if not k.startswith("content.")})
    a, b = with_content(graph), without(graph)
    scores = a.users @ a.items.T
    content = graph["content_users:text"] @ graph["content_items:text"].T
    assert torch.allclose(scores, b.users @ b.items.T + 1.0 * content, atol=1e-6)  # beta starts at 1
    assert with_content.fusion_weights()["content"] == {"text": 1.0}

    batch = Batch(*(torch.tensor(v) for v in ([0, 1], [1, 2], [2, 0], [0, 1], [0, 1], [0, 1, 2], [1, 2], [2, 0], [1, 2])))
    terms = batch_loss_terms(with_content, with_content, graph, batch, reg=0.0)
    terms["bpr"].backward()
    assert with_content.content.weight.grad is not None and with_content.content.weight.grad.abs().item() > 0


def test_rescale_on_validation_picks_the_best_factor_per_modality_and_keeps_ties_at_one():
    from recgoat_cli.stages.train import CONTENT_SCALES, rescale_content_on_validation

    content = ContentScore(["text", "image"], init=1.0)
    with torch.no_grad():
        content.weight.copy_(torch.tensor([0.4, 2.0]))
    # a validation score peaked at text weight 0.8 (factor 2) and flat in the image weight
    score = lambda: -abs(content.weight[0].item() - 0.8)  # noqa: E731
    with torch.no_grad():
        factors, best = rescale_content_on_validation(content, score)
    assert factors == {"text": 2.0, "image": 1.0} and 2.0 in CONTENT_SCALES
    assert best == pytest.approx(0.0, abs=1e-6)
    assert content.weight.tolist() == pytest.approx([0.8, 2.0])  # folded into the weights
