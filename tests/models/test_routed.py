"""RoutedOmniSep: each query answered by the expert of its nearest routing label."""
import pytest
import torch
from asteroid.models import BaseModel

from omnisep_plugin.models import OmniSep, RoutedOmniSep
from omnisep_plugin.models.routed import routed_from_experts
from omnisep_plugin.separation.routing import run_routed
from omnisep_plugin.separation.backends import RoutedSeparator, as_separator
from omnisep_plugin.testing.dummies import TINY_OMNISEP, tiny_omnisep

D = TINY_OMNISEP["query_dim"]
LABELS = ["cello", "dog", "rain", "flute"]
EXPERT_OF = {"cello": "instruments", "flute": "instruments", "dog": "omni", "rain": "omni"}


def _label_embeddings():
    return torch.eye(D)[:len(LABELS)] * 3.0  # one axis per label


@pytest.fixture
def parts():
    torch.manual_seed(0)
    omni, instruments = tiny_omnisep().eval(), tiny_omnisep().eval()
    model = routed_from_experts({"omni": omni, "instruments": instruments}, EXPERT_OF,
                                _label_embeddings(), LABELS)
    return model, omni, instruments


def _query(*labels, noise=0.1):
    emb = _label_embeddings()
    return torch.stack([emb[LABELS.index(lab)] + noise * torch.randn(D) for lab in labels])


def test_each_stem_is_the_output_of_its_labels_expert(parts):
    model, omni, instruments = parts
    wav = torch.randn(2, 4000)
    query = torch.stack([_query("cello", "dog", "flute"), _query("rain", "rain", "cello")])
    assert model.route(query).tolist() == [[1, 0, 1], [0, 0, 1]]
    with torch.no_grad():
        out, by_omni, by_instr = model(wav, query), omni(wav, query), instruments(wav, query)
    assert out.shape == (2, 3, 4000)
    assert model.route_names(query[1]) == ["omni", "omni", "instruments"]
    for b in range(2):
        for i, name in enumerate(model.route_names(query[b])):
            expected = by_instr if name == "instruments" else by_omni
            assert torch.allclose(out[b, i], expected[b, i], atol=1e-6)
    assert not torch.allclose(by_omni, by_instr)  # the experts differ: routing is visible


def test_an_expert_runs_only_on_mixtures_routed_to_it():
    calls = []

    def runner(tag):
        def run(wav, query):
            calls.append((tag, wav.shape[0]))
            return torch.full((wav.shape[0], query.shape[1], wav.shape[-1]), float(tag))
        return run

    routes = torch.tensor([[0, 0], [0, 1], [0, 0]])
    out = run_routed(routes, [runner(0), runner(1)], torch.zeros(3, 10), torch.zeros(3, 2, D))
    assert calls == [(0, 3), (1, 1)]
    assert out[:, :, 0].tolist() == [[0, 0], [0, 1], [0, 0]]


def test_asteroid_interface_and_round_trip(parts, tmp_path):
    model, *_ = parts
    wav, query = torch.randn(1, 3000), _query("dog", "flute")[None]
    path = tmp_path / "routed.pth"
    model.save(path)
    for loaded in (OmniSep.from_pretrained(str(path)), RoutedOmniSep.from_pretrained(path),
                   BaseModel.from_pretrained(torch.load(path, weights_only=True))):
        assert isinstance(loaded, RoutedOmniSep) and not loaded.training
        assert loaded.expert_names == ["omni", "instruments"] and loaded.route_labels == LABELS
        with torch.no_grad():
            assert torch.allclose(loaded(wav, query), model(wav, query), atol=1e-6)
    with torch.no_grad():
        assert model.forward_wav(wav[0], query[0, :1]).shape == (1, 3000)
        neg = model.forward_wav(wav, _query("dog")[None], negative=_query("rain")[None], alpha=0.5)
    assert neg.shape == (1, 1, 3000)
    with pytest.raises(ValueError, match="expects 16000 Hz"):
        model.forward_wav(wav, query, sample_rate=8000)


def test_backend_separator_routes_like_the_model(parts):
    model, *_ = parts
    wav, query = torch.randn(2, 5000), torch.stack([_query("cello", "rain"), _query("dog", "flute")])
    sep = as_separator(model)
    assert isinstance(sep, RoutedSeparator) and sep.sample_rate == 16000
    with torch.no_grad():
        assert torch.allclose(sep(wav, query), model(wav, query), atol=1e-4)


def test_bad_routing_tables_are_refused():
    a, b = tiny_omnisep(), tiny_omnisep(query_dim=D + 1)
    with pytest.raises(ValueError, match="one query dimension"):
        RoutedOmniSep([a, b], ["x"], [0])
    with pytest.raises(ValueError, match="one expert index per routing label"):
        RoutedOmniSep([a], ["x", "y"], [0])
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        RoutedOmniSep([a], ["x"], [1])
    with pytest.raises(ValueError, match="No expert for 1 labels"):
        routed_from_experts({"omni": a}, {"x": "omni"}, torch.randn(2, D), ["x", "y"])
    with pytest.raises(ValueError, match="unknown experts"):
        routed_from_experts({"omni": a}, {"x": "other"}, torch.randn(1, D), ["x"])


def test_a_corrupt_routed_package_is_a_clear_error(parts, tmp_path):
    model, *_ = parts
    conf = model.serialize()
    del conf["state_dict"]["route_embeddings"]
    with pytest.raises(ValueError, match="Incompatible RoutedOmniSep package"):
        OmniSep.from_pretrained(conf)


def test_a_package_that_names_shipped_networks_loads_their_weights(parts, tmp_path, monkeypatch):
    from omnisep_plugin.models.routed import referencing_package
    from omnisep_plugin.registry import PRETRAINED

    model, omni, instruments = parts
    omni.set_mask_temperatures(_label_embeddings(), torch.tensor([1.0, 2.0, 2.0, 1.0]))
    for name, net in (("tiny-omni", omni), ("tiny-instruments", instruments)):
        net.save(tmp_path / f"{name}.pth")
        monkeypatch.setitem(PRETRAINED, name, lambda n=name: tmp_path / f"{n}.pth")
    pkg = referencing_package(model, ["tiny-omni", "tiny-instruments"])
    assert set(pkg["state_dict"]) == {"route_embeddings", "route_experts"}
    loaded = OmniSep.from_pretrained(pkg)
    assert loaded.expert_refs == ["tiny-omni", "tiny-instruments"]
    assert torch.equal(loaded.experts[0].temperature_values, omni.temperature_values)
    wav, query = torch.randn(1, 3000), _query("dog", "cello")[None]
    with torch.no_grad():
        assert torch.allclose(loaded(wav, query), model(wav, query), atol=1e-6)
    assert set(loaded.serialize()["state_dict"]) == set(model.state_dict())  # self-contained again
    monkeypatch.delitem(PRETRAINED, "tiny-omni")
    with pytest.raises((ValueError, FileNotFoundError), match="tiny-omni"):
        OmniSep.from_pretrained(referencing_package(model, ["tiny-omni", "tiny-instruments"]))
