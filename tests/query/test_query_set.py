import pytest
import torch
import torch.nn.functional as F

from omnisep_plugin.query import QuerySet


def test_paraphrase_maps_to_nearest_label(tmp_path):
    g = torch.Generator().manual_seed(0)
    labels = ["dog barking", "violin", "helicopter", "applause"]
    emb = F.normalize(torch.randn(4, 16, generator=g), dim=-1)
    qs = QuerySet(labels, emb)
    paraphrase = F.normalize(emb[2] + 0.3 * torch.randn(16, generator=g), dim=-1)
    idx, names = qs.nearest(paraphrase[None])
    assert names == ["helicopter"] and idx.tolist() == [2]
    assert torch.equal(qs.augment(paraphrase[None]), emb[2:3])
    path = tmp_path / "query_set.pt"
    qs.save(path)
    back = QuerySet.load(path)
    assert back.labels == labels and torch.equal(back.embeddings, emb)


def test_cosine_not_dot_product():
    qs = QuerySet(["big", "aligned"], torch.tensor([[10.0, 10.0], [0.0, 1.0]]))
    assert qs.nearest(torch.tensor([[0.1, 1.0]]))[1] == ["aligned"]


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        QuerySet(["a", "a"], torch.zeros(2, 3))
    with pytest.raises(ValueError, match="dim"):
        QuerySet(["a"], torch.zeros(1, 3)).nearest(torch.zeros(1, 4))
    with pytest.raises(FileNotFoundError):
        QuerySet.load(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a valid Query-Set"):
        QuerySet.load(tmp_path / "bad.pt")


def test_similarity_weighted_query_aug_tends_to_the_nearest_label():
    """Eq. 5's soft form: sum_m softmax(cos / T)_m Q_m -> the nearest label as T -> 0, and
    the plain mean of the labels as T -> infinity."""
    g = torch.Generator().manual_seed(1)
    emb = F.normalize(torch.randn(5, 8, generator=g), dim=-1)
    qs = QuerySet([f"l{i}" for i in range(5)], emb)
    query = F.normalize(emb[3] + 0.8 * torch.randn(8, generator=g), dim=-1)[None]
    nearest = qs.augment(query)
    assert torch.equal(nearest, emb[qs.nearest(query)[0]])
    gaps = [float((qs.augment(query, temperature=t) - nearest).norm()) for t in (1.0, 0.1, 0.01, 0.001)]
    assert gaps[0] > 0.1 and all(a >= b for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 1e-6
    assert gaps[1] < gaps[0]
    assert torch.allclose(qs.augment(query, temperature=1e6), emb.mean(0, keepdim=True), atol=1e-5)
    # by hand for one temperature
    w = torch.softmax((F.normalize(query, dim=-1) @ emb.T) / 0.3, dim=-1)
    assert torch.allclose(qs.augment(query, temperature=0.3), w @ emb, atol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        qs.augment(query, temperature=-1.0)
