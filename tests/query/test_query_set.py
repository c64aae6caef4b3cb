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
