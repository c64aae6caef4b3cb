"""The shipped open-domain model (``--model omni``): loads offline and separates its
example, a mixture of two held-out recordings it never trained on."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

from omnisep_plugin.bin.cli import cli
from omnisep_plugin.models import OmniSep
from omnisep_plugin.pipelines import BUNDLES, DEFAULT, OMNI


def _sdr(ref, est):
    return 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2))


def test_omni_bundle_is_shipped_small_and_loads():
    assert BUNDLES["omni"] is OMNI
    size = sum(p.stat().st_size for p in OMNI.folder.iterdir())
    assert size <= 64 * 2**20
    model = OmniSep.from_pretrained("omni")
    assert isinstance(model, OmniSep) and not model.training
    assert model.query_dim == DEFAULT.get_model().query_dim  # the same query space as default
    labels = OMNI.example_sources()
    assert set(labels) == {"dog barking", "woman speaking"}
    mix, sr = sf.read(OMNI.example, dtype="float32")
    total = sum(sf.read(p, dtype="float32")[0] for p in labels.values())
    assert sr == OMNI.sample_rate and np.abs(total - mix).max() < 1e-3  # the sources sum to it


def test_omni_softens_the_masks_of_everyday_sounds_only():
    """The shipped mask-temperature table (docs/results.md section 10): each of the 137
    labels' text embeddings; T = 1 (the trained masks) for the 73 instruments, 1.5 for the
    everyday and speech classes."""
    from omnisep_plugin.data.recipes.omni import load_instruments
    from omnisep_plugin.query import QuerySet

    model, query_set = OmniSep.from_pretrained("omni"), QuerySet.load(OMNI.query_set)
    instruments = set(load_instruments())
    assert len(model.temperature_values) == len(query_set) == 137
    expected = torch.tensor([1.0 if lab in instruments else 1.5 for lab in query_set.labels])
    assert torch.equal(model.temperature_values, expected)
    logits = torch.ones(1, 2, 3, 4)
    query = torch.stack([query_set.lookup("violin"), query_set.lookup("dog barking")])[None]
    assert model.temper(logits, query)[0, :, 0, 0].tolist() == pytest.approx([1.0, 1 / 1.5])


def test_text_queries_pick_their_own_source_from_the_example():
    """Each label's text query brings its own recording out at least 2 dB above the mixture
    (the shipped model, wave_loss since session 20, plain text queries: dog barking +4.0 dB,
    woman speaking +5.5 dB SDRi), and its estimate is closer to that source than to the other one."""
    model, encoder = OMNI.get_model(), OMNI.get_encoder()
    mix, _ = sf.read(OMNI.example, dtype="float32")
    sources = {lab: sf.read(p, dtype="float32")[0] for lab, p in OMNI.example_sources().items()}
    for label, ref in sources.items():
        other = next(s for lab, s in sources.items() if lab != label)
        est = model.separate(torch.from_numpy(mix)[None], query=encoder.embed_text([label]))
        est = est.reshape(-1).numpy()[:len(ref)]
        gain = _sdr(ref, est) - _sdr(ref, mix)
        assert gain >= 2.0, (label, gain)
        assert _sdr(ref, est) > _sdr(other, est), label


def test_separate_cli_takes_model_omni(tmp_path):
    """Both present sources and one absent class, one pass: each text query is composed with
    its label's audio prototype (the bundle ships them), both present sources come out at
    least 2 dB above the mixture (wave_loss, each stem removing the others: +6.6 and +5.9
    dB; alone, one pass: +4.2 and +4.6 dB) and are not flagged absent,
    and the absent class comes out far quieter and is flagged, by omni's own energy threshold
    (the default model's similarity threshold is not used for omni)."""
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["separate", str(OMNI.example), "--model", "omni",
                                      "--text", "dog barking", "--text", "woman speaking",
                                      "--text", "church organ", "--out", str(out)])
    assert result.exit_code == 0, result.output
    est, sr = sf.read(out / "example_mixture_est1.wav")
    assert sr == OMNI.sample_rate and len(est) == sf.info(OMNI.example).frames
    mix = sf.read(OMNI.example)[0]
    cues = []
    for i, label in enumerate(("dog barking", "woman speaking", "church organ"), 1):
        sidecar = json.loads((out / f"example_mixture_est{i}.json").read_text())
        assert sidecar["model"] == "omni" and sidecar["presence"]["similarity"] is None
        assert sidecar["prototype"] == {"label": label, "similarity": 1.0, "used": True}
        cues.append(sidecar["presence"])
    for i, ref in enumerate(OMNI.example_sources().values(), 1):
        ref = sf.read(ref)[0]
        est = sf.read(out / f"example_mixture_est{i}.wav")[0]
        assert _sdr(ref, est) - _sdr(ref, mix) >= 2.0, i
    assert not cues[0]["absent"] and not cues[1]["absent"]
    assert cues[2]["energy_db"] < min(cues[0]["energy_db"], cues[1]["energy_db"]) - 10
    assert cues[2]["absent"] and cues[2]["min_energy_db"] == OMNI.presence.min_energy_db
    assert "example_mixture_est3.wav): target likely absent" in result.output


def test_no_prototypes_gives_the_plain_text_query(tmp_path):
    runs = {}
    for flag in ("--prototypes", "--no-prototypes"):
        out = tmp_path / flag
        result = CliRunner().invoke(cli, ["separate", str(OMNI.example), "--model", "omni",
                                          "--text", "dog barking", flag, "--out", str(out)])
        assert result.exit_code == 0, result.output
        runs[flag] = (sf.read(out / "example_mixture_est1.wav")[0],
                      json.loads((out / "example_mixture_est1.json").read_text()))
    assert "prototype" not in runs["--no-prototypes"][1]
    assert runs["--prototypes"][1]["prototype"]["used"]
    assert np.abs(runs["--prototypes"][0] - runs["--no-prototypes"][0]).max() > 1e-3


def test_an_audio_example_is_composed_with_its_nearest_label_for_omni_only(tmp_path):
    """`--model omni` maps an audio example onto its nearest label (each example source onto
    its own: cosines 0.35 and 0.48, above the 0.3 floor) and composes the two; with
    `--no-audio-label` the example is the query alone; `default` (whose query side is omni's)
    does it too, `instruments` does not do it unasked."""
    runs = {}
    for model, label, flag in (("omni", "dog barking", None), ("omni", "woman speaking", None),
                               ("omni", "dog barking", "--no-audio-label"),
                               ("instruments", "dog barking", None), ("default", "dog barking", None)):
        out = tmp_path / f"{model}-{label}-{flag}"
        example = OMNI.example_sources()[label]
        result = CliRunner().invoke(cli, ["separate", str(OMNI.example), "--model", model,
                                          "--audio", str(example), "--out", str(out),
                                          *([flag] if flag else [])])
        assert result.exit_code == 0, result.output
        runs[model, label, flag] = (sf.read(out / "example_mixture_est1.wav")[0],
                                    json.loads((out / "example_mixture_est1.json").read_text()))
    for label in ("dog barking", "woman speaking"):
        record = runs["omni", label, None][1]["audio_label"]
        assert record["label"] == label and record["used"] and record["similarity"] >= 0.3
    assert "audio_label" not in runs["omni", "dog barking", "--no-audio-label"][1]
    assert "audio_label" not in runs["instruments", "dog barking", None][1]
    assert runs["default", "dog barking", None][1]["audio_label"]["label"] == "dog barking"
    np.testing.assert_allclose(runs["default", "dog barking", None][0],
                               runs["omni", "dog barking", None][0], atol=1e-4)
    with_label, without = runs["omni", "dog barking", None][0], runs["omni", "dog barking", "--no-audio-label"][0]
    assert np.abs(with_label - without).max() > 1e-3


def test_omni_with_its_encoder_given_takes_an_audio_example_without_its_query_set(tmp_path):
    """`--offline` replaces the bundle's encoder and Query-Set: no label is looked up (before
    the default checked for it, this stopped with "Audio labels need a Query-Set")."""
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["separate", str(OMNI.example), "--model", "omni",
                                      "--offline", str(OMNI.audio_encoder), "--audio",
                                      str(OMNI.example_sources()["dog barking"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "audio_label" not in json.loads((out / "example_mixture_est1.json").read_text())


def test_a_text_far_from_every_label_is_named_with_the_model_that_knows_it(tmp_path):
    """`instruments` knows 11 instruments: "dog barking" is far from all of them (MiniLM
    cosine 0.21 to "trumpet"), so separate says so and names `--model default`, which has
    the label; a label `instruments` knows, and "dog barking" asked of `omni` or `default`,
    get no such warning."""
    outputs = {}
    for model, text in (("instruments", "dog barking"), ("instruments", "violin"),
                        ("omni", "dog barking"), ("default", "dog barking")):
        out = tmp_path / f"{model}-{text}"
        result = CliRunner().invoke(cli, ["separate", str(OMNI.example), "--model", model,
                                          "--text", text, "--out", str(out)])
        assert result.exit_code == 0, result.output
        sidecar = json.loads((out / "example_mixture_est1.json").read_text())
        outputs[model, text] = (result.output, sidecar["nearest_label"])
    output, nearest = outputs["instruments", "dog barking"]
    assert nearest["similarity"] < 0.5 and nearest["label"] != "dog barking"
    assert (f"'dog barking' is far from every label the model was trained on (nearest: "
            f"'{nearest['label']}'") in output
    assert "--model default knows 'dog barking' (cosine 1.00)" in output
    for key, label in ((("instruments", "violin"), "violin"), (("omni", "dog barking"), "dog barking"),
                       (("default", "dog barking"), "dog barking")):
        output, nearest = outputs[key]
        assert nearest == {"label": label, "similarity": 1.0} and "far from every label" not in output


@pytest.mark.parametrize("options", [{"text": ["dog barking", "woman speaking"]},
                                     {"audio": ["dog barking"]}, {"text": ["dog barking"]}])
def test_the_bundles_queries_are_what_the_cli_separates_with(tmp_path, options):
    """`OMNI.queries(...)` + `model.separate` writes what `omnisep separate --model omni
    --no-residual-negative` writes (prototypes, audio labels, stems removing each other: the
    shipped query, not the bare text embedding), and
    `OMNI.separate(...)` what the CLI writes by default (the same, and a single stem's
    second pass), so Python users get the same estimates."""
    sources = OMNI.example_sources()
    values = {k: [str(sources[v]) if k == "audio" else v for v in vals] for k, vals in options.items()}
    args = [a for k, vals in values.items() for v in vals for a in (f"--{k}", v)]
    cli_out = {}
    for flag in ("--residual-negative", "--no-residual-negative"):
        out = tmp_path / flag
        ok = CliRunner().invoke(cli, ["separate", str(OMNI.example), "--model", "omni", *args,
                                      "--out", str(out), "--backend", "eager"] +
                                ([flag] if flag.startswith("--no") else []))
        assert ok.exit_code == 0, ok.output
        cli_out[flag] = [(sf.read(out / f"example_mixture_est{i}.wav", dtype="float32")[0],
                          json.loads((out / f"example_mixture_est{i}.json").read_text()))
                         for i in range(1, len(next(iter(values.values()))) + 1)]
    mix = torch.from_numpy(sf.read(OMNI.example, dtype="float32")[0])
    one_pass = OMNI.get_model().separate(mix[None], query=OMNI.queries(**values)[None])[0].numpy()
    default = OMNI.separate(mix, **values).numpy()
    plain = OMNI.get_model().separate(mix[None], query=OMNI.get_encoder().embed_text(["dog barking"]))
    single = len(one_pass) == 1
    for i in range(len(one_pass)):
        (cli_two, record), (cli_one, record_one) = (cli_out["--residual-negative"][i],
                                                    cli_out["--no-residual-negative"][i])
        assert np.abs(cli_one - one_pass[i][:len(cli_one)]).max() < 2e-3, i
        assert np.abs(cli_two - default[i][:len(cli_two)]).max() < 2e-3, i
        assert record["residual_negative"] == (0.5 if single else None)
        assert record_one["residual_negative"] is None
        assert (np.abs(cli_two - cli_one).max() > 1e-3) == single  # several stems: one pass
    assert np.abs(one_pass[0] - plain.reshape(-1).numpy()).max() > 1e-2   # not the bare text


def test_the_residual_negative_brings_the_example_dog_out_further():
    """A single text query's second pass (the first pass's residual removed) brings the
    example's dog barking out further than one pass (+6.9 against +4.2 dB SDRi), and a
    query for a class the example lacks comes out quieter still."""
    mix = torch.from_numpy(sf.read(OMNI.example, dtype="float32")[0])
    ref = sf.read(OMNI.example_sources()["dog barking"], dtype="float32")[0]
    gains = {}
    for flag in (True, False):
        est = OMNI.separate(mix, text="dog barking", residual_negative=flag)[0].numpy()
        gains[flag] = _sdr(ref, est) - _sdr(ref, mix.numpy())
    assert gains[True] >= gains[False] + 1.0, gains
    energy = {flag: float(OMNI.separate(mix, text="church organ", residual_negative=flag)
                          .pow(2).sum() / mix.pow(2).sum()) for flag in (True, False)}
    assert energy[True] < energy[False], energy
    # a bare text (no prototype: --no-prototypes) keeps one pass, even when asked
    from omnisep_plugin.pipelines import residual_negative_stems
    from omnisep_plugin.query.spec import QuerySpec
    assert residual_negative_stems(True, [QuerySpec(text="dog barking")], [{}], [None], OMNI,
                                   OMNI.get_encoder()) == [False]
    assert residual_negative_stems(True, [QuerySpec(text="dog barking", prototypes=True)],
                                   [{"prototype": {"used": True}}], [None], OMNI,
                                   OMNI.get_encoder()) == [True]


def test_the_bundles_queries_refuse_uneven_or_no_stems():
    with pytest.raises(ValueError, match="per stem"):
        OMNI.queries()
    with pytest.raises(ValueError, match="per stem"):
        OMNI.queries(text=["a", "b"], audio=[str(OMNI.example)])


def test_export_bundle_ships_prototypes_of_every_label_or_refuses(tmp_path):
    from omnisep_plugin.pipelines import export_bundle
    from omnisep_plugin.query import QuerySet
    args = (OMNI.model, OMNI.audio_encoder, OMNI.query_set, OMNI.example)
    sizes = export_bundle(*args, tmp_path / "ok", text_seeds=False,
                          audio_prototypes_path=OMNI.audio_prototypes)
    assert "audio_prototypes.pt" in sizes
    bank = QuerySet.load(OMNI.audio_prototypes)
    partial = tmp_path / "partial.pt"
    QuerySet(bank.labels[1:], bank.embeddings[1:]).save(partial)
    with pytest.raises(ValueError, match="lack 1 of the Query-Set's labels"):
        export_bundle(*args, tmp_path / "bad", text_seeds=False, audio_prototypes_path=partial)


def test_an_unknown_shipped_name_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["separate", str(OMNI.example), "--model", "omnii",
                                      "--text", "dog", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "Traceback" not in result.output


def test_prototypes_with_a_model_that_ships_none_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["separate", str(OMNI.example), "--model", "instruments",
                                      "--text", "cello", "--prototypes", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "--audio-prototypes" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()


def test_a_model_file_takes_prototypes_from_audio_prototypes(tmp_path):
    """Outside the shipped names: --audio-prototypes alone turns the composition on."""
    out = tmp_path / "o"
    result = CliRunner().invoke(cli, ["separate", str(OMNI.example), "--model", str(OMNI.model),
                                      "--offline", str(OMNI.audio_encoder), "--query-set",
                                      str(OMNI.query_set), "--audio-prototypes",
                                      str(OMNI.audio_prototypes), "--text", "dog barking",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    sidecar = json.loads((out / "example_mixture_est1.json").read_text())
    assert sidecar["prototype"] == {"label": "dog barking", "similarity": 1.0, "used": True}
