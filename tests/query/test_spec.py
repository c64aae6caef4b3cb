"""The query a user describes: audio examples are read in bounded memory and checked; text
queries composed with their nearest label's audio prototype; audio examples composed with
their nearest label's text."""
import numpy as np
import pytest
import soundfile as sf
import torch

from omnisep_plugin.query import QuerySet, compose_query, negative_query
from omnisep_plugin.query.base import QueryEncoder
from omnisep_plugin.evaluation.fixed_mixtures import source_queries
from omnisep_plugin.query.spec import (MAX_AUDIO_QUERY_SECONDS, QuerySpec, build_queries,
                                       build_query, embed_audio_file)


class Recorder(QueryEncoder):
    dim, modalities, sample_rate = 4, ("audio",), 16000

    def __init__(self):
        super().__init__()
        self.lengths = []

    def _embed_audio(self, wav):
        self.lengths.append(wav.shape[-1])
        return torch.ones(wav.shape[0], self.dim)


def test_audio_query_is_read_up_to_a_bounded_length_and_resampled(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, 0.1 * np.ones(int((MAX_AUDIO_QUERY_SECONDS + 10) * 8000), np.float32), 8000)
    enc = Recorder()
    assert embed_audio_file(enc, path).shape == (4,)
    assert enc.lengths == [int(MAX_AUDIO_QUERY_SECONDS * 16000)]


def test_audio_query_shorter_than_a_frame_names_the_file(tmp_path):
    path = tmp_path / "blip.wav"
    sf.write(path, 0.1 * np.ones(200, np.float32), 16000)
    with pytest.raises(ValueError, match="blip.wav.*200 samples is shorter than one analysis frame"):
        embed_audio_file(Recorder(), path)


@pytest.mark.parametrize("temperature", [-0.1, float("nan"), float("inf")])
def test_query_aug_temperature_is_checked(temperature):
    spec = QuerySpec(text="x", query_aug=True, query_aug_temperature=temperature)
    with pytest.raises(ValueError, match="temperature"):
        spec.validate()


class Words(QueryEncoder):
    """Text -> a fixed unit vector per word (2-d), so every cosine is known."""
    dim, modalities, sample_rate = 2, ("text", "audio"), 16000
    VECTORS = {"dog": [1.0, 0.0], "cat": [0.0, 1.0], "puppy": [0.8, 0.6], "thunder": [-0.6, 0.8]}

    def _embed_text(self, texts):
        return torch.tensor([self.VECTORS[t] for t in texts])

    def _embed_audio(self, wav):
        return torch.tensor([[0.0, -1.0]] * wav.shape[0])


LABELS = QuerySet(["dog", "cat"], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
PROTOTYPES = QuerySet(["cat", "dog"], torch.tensor([[0.6, 0.8], [0.6, -0.8]]))


def test_a_text_query_is_composed_with_its_nearest_labels_audio_prototype():
    q, record = build_query(Words(), QuerySpec(text="puppy", prototypes=True), LABELS, PROTOTYPES)
    expected = compose_query({"text": torch.tensor([0.8, 0.6]), "audio": torch.tensor([0.6, -0.8])})
    assert torch.allclose(q, expected)
    assert record["prototype"] == {"label": "dog", "similarity": 0.8, "used": True}
    plain, plain_record = build_query(Words(), QuerySpec(text="puppy"), LABELS, PROTOTYPES)
    assert torch.allclose(plain, torch.tensor([0.8, 0.6])) and "prototype" not in plain_record


def test_a_text_far_from_every_label_keeps_its_own_embedding():
    # "thunder" is at cosine 0.8 from "cat" but -0.6 from "dog": above the 0.5 floor
    q, record = build_query(Words(), QuerySpec(text="thunder", prototypes=True), LABELS, PROTOTYPES)
    assert record["prototype"]["label"] == "cat" and record["prototype"]["used"]
    far = QuerySet(["dog"], torch.tensor([[1.0, 0.0]]))     # cosine -0.6 < 0.5
    q, record = build_query(Words(), QuerySpec(text="thunder", prototypes=True), far, PROTOTYPES)
    assert torch.allclose(q, torch.tensor([-0.6, 0.8])) and record["prototype"]["used"] is False


def test_prototypes_apply_to_the_negative_text_too_and_never_replace_an_audio_example(tmp_path):
    q, record = build_query(Words(), QuerySpec(text="cat", negative_text="dog", prototypes=True),
                            LABELS, PROTOTYPES)
    cat = compose_query({"text": torch.tensor([0.0, 1.0]), "audio": torch.tensor([0.6, 0.8])})
    dog = compose_query({"text": torch.tensor([1.0, 0.0]), "audio": torch.tensor([0.6, -0.8])})
    assert torch.allclose(q, negative_query(cat, dog, 0.5))
    assert record["negative_prototype"]["label"] == "dog"
    example = tmp_path / "example.wav"
    sf.write(example, 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32), 16000)
    q, record = build_query(Words(), QuerySpec(text="cat", audio=str(example), prototypes=True),
                            LABELS, PROTOTYPES)
    assert torch.allclose(q, compose_query({"text": torch.tensor([0.0, 1.0]),
                                            "audio": torch.tensor([0.0, -1.0])}))
    assert "prototype" not in record


def test_prototypes_without_their_banks_or_a_text_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="--audio-prototypes"):
        build_query(Words(), QuerySpec(text="cat", prototypes=True), LABELS, None)
    example = tmp_path / "example.wav"
    sf.write(example, np.ones(1600, np.float32), 16000)
    with pytest.raises(ValueError, match="apply to a text query"):
        QuerySpec(audio=str(example), prototypes=True).validate()
    with pytest.raises(ValueError, match="3-d embeddings"):
        build_query(Words(), QuerySpec(text="cat", prototypes=True), LABELS,
                    QuerySet(["cat"], torch.ones(1, 3)))


OWL = QuerySet(["dog", "cat", "owl"], torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, -0.8]]))


def _example(tmp_path, name="example.wav"):
    path = tmp_path / name
    sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32), 16000)
    return str(path)


def test_an_audio_example_is_composed_with_its_nearest_labels_text(tmp_path):
    example = _example(tmp_path)      # Words embeds any audio as [0, -1]: cosine 0.8 to "owl"
    q, record = build_query(Words(), QuerySpec(audio=example, audio_label=True), OWL)
    assert torch.allclose(q, compose_query({"text": torch.tensor([0.6, -0.8]),
                                            "audio": torch.tensor([0.0, -1.0])}))
    assert record["audio_label"] == {"label": "owl", "similarity": 0.8, "used": True}
    plain, plain_record = build_query(Words(), QuerySpec(audio=example), OWL)
    assert torch.allclose(plain, torch.tensor([0.0, -1.0])) and "audio_label" not in plain_record


def test_an_audio_example_far_from_every_label_or_given_with_a_text_is_kept_as_it_is(tmp_path):
    example = _example(tmp_path)
    q, record = build_query(Words(), QuerySpec(audio=example, audio_label=True), LABELS)
    assert torch.allclose(q, torch.tensor([0.0, -1.0]))     # cosines 0 and -1 < 0.3
    assert record["audio_label"] == {"label": "dog", "similarity": 0.0, "used": False}
    q, record = build_query(Words(), QuerySpec(text="cat", audio=example, audio_label=True), OWL)
    assert torch.allclose(q, compose_query({"text": torch.tensor([0.0, 1.0]),
                                            "audio": torch.tensor([0.0, -1.0])}))
    assert "audio_label" not in record


def test_the_label_weighs_what_the_audio_weighs_and_is_not_added_beside_an_image(tmp_path):
    example = _example(tmp_path)
    q, _ = build_query(Words(), QuerySpec(audio=example, weights={"audio": 3.0}, audio_label=True), OWL)
    assert torch.allclose(q, compose_query({"text": torch.tensor([0.6, -0.8]),
                                            "audio": torch.tensor([0.0, -1.0])}))

    class WithImages(Words):
        modalities = ("text", "image", "audio")

        def _embed_image(self, paths):
            return torch.tensor([[1.0, 0.0]] * len(paths))

    image = tmp_path / "frame.png"
    image.write_bytes(b"png")
    q, record = build_query(WithImages(), QuerySpec(image=str(image), audio=example,
                                                    audio_label=True), OWL)
    assert torch.allclose(q, compose_query({"image": torch.tensor([1.0, 0.0]),
                                            "audio": torch.tensor([0.0, -1.0])}))
    assert "audio_label" not in record


def test_audio_labels_apply_to_the_negative_audio_too(tmp_path):
    q, record = build_query(Words(), QuerySpec(text="dog", negative_audio=_example(tmp_path),
                                               audio_label=True), OWL)
    owl = compose_query({"text": torch.tensor([0.6, -0.8]), "audio": torch.tensor([0.0, -1.0])})
    assert torch.allclose(q, negative_query(torch.tensor([1.0, 0.0]), owl, 0.5))
    assert record["negative_audio_label"]["label"] == "owl"


def test_audio_labels_without_a_query_set_or_an_audio_query_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="Audio labels need a Query-Set"):
        build_query(Words(), QuerySpec(audio=_example(tmp_path), audio_label=True), None)
    with pytest.raises(ValueError, match="apply to an audio query"):
        QuerySpec(text="cat", audio_label=True).validate()


class _Cut:
    def has_custom(self, name):
        return False


def test_the_test_tables_audio_label_kind_is_what_audio_label_gives():
    bank = QuerySet(["cat", "owl"], torch.tensor([[0.0, 1.0], [0.0, -1.0]]))
    q = source_queries(_Cut(), "owl", OWL, bank, None, {"text": 1.0, "audio": 1.0})
    assert torch.allclose(q["audio+label"], compose_query({"text": torch.tensor([0.6, -0.8]),
                                                           "audio": torch.tensor([0.0, -1.0])}))
    assert "audio+label" not in source_queries(_Cut(), "owl", None, bank, None, {"audio": 1.0})


def test_each_stem_removes_the_other_stems():
    cat, dog, puppy = (torch.tensor(Words.VECTORS[w]) for w in ("cat", "dog", "puppy"))
    (q1, p1, r1), (q2, _, r2) = build_queries(Words(), [QuerySpec(text="cat"), QuerySpec(text="dog")])
    assert torch.allclose(p1, cat)   # the positive query: what the query check compares with
    assert torch.allclose(q1, negative_query(cat, dog, 0.5))
    assert torch.allclose(q2, negative_query(dog, cat, 0.5))
    assert r1["stem_negatives"] == [2] and r2["stem_negatives"] == [1]
    # three stems: the mean of the two others; each stem's own alpha
    built = build_queries(Words(), [QuerySpec(text="cat", alpha=1.0), QuerySpec(text="dog"),
                                    QuerySpec(text="puppy")])
    assert torch.allclose(built[0].query, negative_query(cat, (dog + puppy) / 2, 1.0))
    assert built[2].record["stem_negatives"] == [1, 2]


def test_stem_negatives_join_a_stems_own_negative_and_can_be_turned_off():
    cat, dog, thunder = (torch.tensor(Words.VECTORS[w]) for w in ("cat", "dog", "thunder"))
    specs = [QuerySpec(text="cat", negative_text="thunder"), QuerySpec(text="dog")]
    (q1, p1, _), (q2, _, _) = build_queries(Words(), specs)
    assert torch.allclose(p1, cat)
    assert torch.allclose(q1, negative_query(cat, (thunder + dog) / 2, 0.5))
    assert torch.allclose(q2, negative_query(dog, cat, 0.5))
    off = build_queries(Words(), specs, stem_negatives=False)
    for (q, _, record), spec in zip(off, specs):
        assert torch.allclose(q, build_query(Words(), spec)[0]) and "stem_negatives" not in record
    # one stem: the same query as build_query, negatives or not
    (q, _, record), = build_queries(Words(), specs[:1])
    assert torch.allclose(q, build_query(Words(), specs[0])[0]) and "stem_negatives" not in record


def test_stem_negatives_use_the_other_stems_prototypes():
    (q1, _, r1), _ = build_queries(Words(), [QuerySpec(text="cat", prototypes=True),
                                          QuerySpec(text="dog", prototypes=True)],
                                LABELS, PROTOTYPES)
    cat = compose_query({"text": torch.tensor([0.0, 1.0]), "audio": torch.tensor([0.6, 0.8])})
    dog = compose_query({"text": torch.tensor([1.0, 0.0]), "audio": torch.tensor([0.6, -0.8])})
    assert torch.allclose(q1, negative_query(cat, dog, 0.5)) and r1["prototype"]["label"] == "cat"


def test_remove_each_other_on_tensors_is_what_build_queries_does():
    from omnisep_plugin.query import remove_each_other
    specs = [QuerySpec(text=w) for w in ("cat", "dog", "puppy")]
    built = torch.stack([b.query for b in build_queries(Words(), specs)])
    raw = torch.tensor([Words.VECTORS[w] for w in ("cat", "dog", "puppy")])
    assert torch.allclose(remove_each_other(raw), built, atol=1e-6)
    assert torch.equal(remove_each_other(raw[:1]), raw[:1])
    assert torch.allclose(remove_each_other(raw[:2], alpha=0.0), raw[:2])
