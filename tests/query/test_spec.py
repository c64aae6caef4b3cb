"""The query a user describes: audio examples are read in bounded memory and checked."""
import numpy as np
import pytest
import soundfile as sf
import torch

from omnisep_plugin.query.base import QueryEncoder
from omnisep_plugin.query.spec import MAX_AUDIO_QUERY_SECONDS, QuerySpec, embed_audio_file


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
