import pytest
import torch

from omnisep_plugin.query import QueryMixup, compose_query, negative_query


def _queries(batch=64, dim=4):
    return {"text": torch.eye(dim)[0].expand(batch, dim), "image": torch.eye(dim)[1].expand(batch, dim),
            "audio": torch.eye(dim)[2].expand(batch, dim)}


def test_mixup_weights_are_convex_per_example_and_random():
    mix = QueryMixup(mode="mixup").train()
    out = mix(_queries(), generator=torch.Generator().manual_seed(0))
    weights = out[:, :3]
    assert torch.allclose(weights.sum(-1), torch.ones(64), atol=1e-5)
    assert (weights >= 0).all() and (out[:, 3] == 0).all()
    assert weights.std(0).min() > 0.05  # drawn per example
    # U[0,1] weights normalised: the mean weight of each of 3 modalities is 1/3.
    assert torch.allclose(weights.mean(0), torch.full((3,), 1 / 3), atol=0.08)


def test_mixup_per_step_shares_weights_across_the_batch():
    out = QueryMixup(mode="mixup", per_example=False).train()(_queries())
    assert torch.allclose(out, out[:1].expand_as(out))


def test_mixup_only_uses_available_modalities():
    avail = {"text": torch.ones(64, dtype=torch.bool), "image": torch.arange(64) % 2 == 0,
             "audio": torch.zeros(64, dtype=torch.bool)}
    out = QueryMixup(mode="mixup").train()(_queries(), available=avail)
    assert (out[1::2, 1] == 0).all() and (out[:, 2] == 0).all()
    assert (out[0::2, 1] > 0).all()


def test_random_mode_picks_one_modality_per_example():
    out = QueryMixup(mode="random").train()(_queries())
    assert ((out[:, :3] == 1).sum(-1) == 1).all()
    assert len({int(i) for i in out[:, :3].argmax(-1)}) == 3


def test_switch_mode_picks_one_modality_for_the_whole_step():
    mix = QueryMixup(mode="switch").train()
    seen = set()
    for seed in range(20):
        out = mix(_queries(), generator=torch.Generator().manual_seed(seed))
        assert torch.allclose(out, out[:1].expand_as(out))
        assert (out[0, :3] == 1).sum() == 1
        seen.add(int(out[0, :3].argmax()))
    assert seen == {0, 1, 2}


def test_eval_mode_is_the_normalised_composed_query_of_the_test_path():
    # Validation must see queries like the test path's (unit norm): an unnormalised mean of
    # three orthogonal unit queries has norm 0.58.
    for mode in ("mixup", "random", "switch"):
        out = QueryMixup(mode=mode).eval()(_queries())
        assert torch.allclose(out.norm(dim=-1), torch.ones(64))
        assert torch.allclose(out, compose_query(_queries()))
    two = QueryMixup(modalities=("text", "audio")).eval()(_queries())
    assert torch.allclose(two[0], torch.tensor([0.5, 0.0, 0.5, 0.0]) * 2 ** 0.5)
    # with modalities missing per example, the mean of those available, normalised
    avail = {"text": torch.tensor([True, True]), "image": torch.tensor([False, True]),
             "audio": torch.tensor([False, True])}
    out = QueryMixup().eval()({k: v[:2] for k, v in _queries().items()}, available=avail)
    assert torch.allclose(out[0], torch.eye(4)[0])
    assert torch.allclose(out[1], torch.tensor([1.0, 1.0, 1.0, 0.0]) / 3 ** 0.5)


def test_training_mode_keeps_eq_1_unnormalised():
    out = QueryMixup().train()(_queries())
    assert (out.norm(dim=-1) < 1 - 1e-3).all()  # a convex mix of orthogonal unit vectors


def test_mixup_errors():
    with pytest.raises(ValueError, match="Unknown query modality"):
        QueryMixup(modalities=("text", "smell"))
    with pytest.raises(ValueError, match="no \\['image'\\] query"):
        QueryMixup(modalities=("text", "image")).train()({"text": torch.zeros(2, 4)})
    with pytest.raises(ValueError, match="mode"):
        QueryMixup(mode="blend")


def test_compose_query_weighted_mean_and_normalisation():
    q = compose_query({"text": torch.tensor([[2.0, 0.0]]), "image": torch.tensor([[0.0, 2.0]])},
                      weights={"text": 3.0, "image": 1.0}, normalize=False)
    assert torch.allclose(q, torch.tensor([[1.5, 0.5]]))
    qn = compose_query({"text": torch.tensor([[2.0, 0.0]]), "image": torch.tensor([[0.0, 2.0]])})
    assert torch.allclose(qn.norm(dim=-1), torch.ones(1))
    with pytest.raises(ValueError, match="No query"):
        compose_query({})
    with pytest.raises(ValueError, match="Unknown query modality"):
        compose_query({"smell": torch.zeros(1, 2)})
    with pytest.raises(ValueError, match="without a query"):
        compose_query({"text": torch.zeros(1, 2)}, weights={"audio": 1.0})
    with pytest.raises(ValueError, match="not all 0"):
        compose_query({"text": torch.ones(1, 2)}, weights={"text": 0.0})


@pytest.mark.parametrize("variant,expected", [
    ("omnisep", [1.5, -0.5]), ("subtract", [1.0, -0.5]), ("interpolate", [0.5, 0.5])])
def test_negative_query_variants(variant, expected):
    q, qn = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert negative_query(q, qn, 0.5, variant).tolist() == expected
    assert torch.equal(negative_query(q, qn, 0.0, variant), q)


@pytest.mark.parametrize("variant", ["omnisep", "subtract", "interpolate"])
def test_negative_query_normalises_the_negative(variant):
    # The mean of two unit negatives has norm < 1; a raw user tensor any norm: both must
    # weigh as one unit query (official code: q (1 + a) - a normalize(q_neg)).
    q = torch.tensor([1.0, 0.0, 0.0])
    negs = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    unit = torch.nn.functional.normalize(negs.mean(0), dim=0)
    expected = negative_query(q, unit, 0.5, variant)
    assert torch.allclose(negative_query(q, negs.mean(0), 0.5, variant), expected)
    assert torch.allclose(negative_query(q, 7.0 * negs.mean(0), 0.5, variant), expected)
    if variant == "omnisep":
        assert torch.allclose(expected, 1.5 * q - 0.5 * unit)
    raw = negative_query(q, negs.mean(0), 0.5, variant, normalize_negative=False)
    assert not torch.allclose(raw, expected)


def test_negative_query_errors():
    with pytest.raises(ValueError, match="variant"):
        negative_query(torch.zeros(2), torch.zeros(2), 0.5, "mirror")
    with pytest.raises(ValueError, match="alpha"):
        negative_query(torch.zeros(2), torch.zeros(2), float("nan"))
    with pytest.raises(ValueError, match="shapes differ"):
        negative_query(torch.zeros(2), torch.zeros(3), 0.5)
