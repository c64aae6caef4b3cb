"""ImageBind as OmniSep's Query-Net, loaded from a local checkpoint only (never downloads)."""
import importlib.resources
import os
import sys
import warnings
from pathlib import Path
from typing import List, Optional, Union

import torch

from .base import ImageInput, QueryEncoder

#: ``ImageBindModel`` arguments of ImageBind-huge (as in ``imagebind_huge()``), d = 1024.
IMAGEBIND_HUGE = dict(
    vision_embed_dim=1280, vision_num_blocks=32, vision_num_heads=16,
    text_embed_dim=1024, text_num_blocks=24, text_num_heads=16,
    out_embed_dim=1024, audio_drop_path=0.1, imu_drop_path=0.7,
)

CHECKPOINT_HELP = (
    "ImageBind-huge weights are not shipped and are never downloaded at run time: fetch "
    "imagebind_huge.pth (about 4.5 GB) from Meta's ImageBind release "
    "(github.com/facebookresearch/ImageBind, README 'Usage') on a machine with internet "
    "access and pass its local path")

# ImageBind's official audio preprocessing (imagebind.data.load_and_transform_audio_data).
_AUDIO = dict(num_mel_bins=128, target_length=204, clip_duration=2, clips_per_video=3,
              mean=-4.268, std=9.138)
# ImageBind's (CLIP's) image normalisation.
_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


def import_imagebind():
    """Import the ``imagebind`` package (``imagebind-packaged``) with torchvision >= 0.17.

    ``imagebind`` imports pytorchvideo, which imports the removed module
    ``torchvision.transforms.functional_tensor``; its successor is registered under the old
    name first. Returns the ``(imagebind.data, imagebind.models.imagebind_model)`` modules.
    """
    import torchvision.transforms._functional_tensor as functional_tensor

    sys.modules.setdefault("torchvision.transforms.functional_tensor", functional_tensor)
    try:
        with warnings.catch_warnings():  # deprecation notices from pytorchvideo / timm imports
            warnings.simplefilter("ignore")
            from imagebind import data
            from imagebind.models import imagebind_model
    except ImportError as err:
        raise ImportError(
            f"ImageBind's model code is missing ({err}); install it with "
            "`pip install --no-deps imagebind-packaged==0.1.2 pytorchvideo==0.1.5`") from None
    return data, imagebind_model


class ImageBindEncoder(QueryEncoder):
    """Frozen ImageBind encoder for text, image and audio queries.

    Args:
        checkpoint_path: local checkpoint: either Meta's ``imagebind_huge.pth`` (a state
            dict of ImageBind-huge) or a dict ``{"model_kwargs": ..., "state_dict": ...}``
            for another size (used by the tests with a tiny random ImageBind).
        model_kwargs: ``ImageBindModel`` arguments; defaults to the checkpoint's own, else
            :data:`IMAGEBIND_HUGE`.
        device: where to run the encoder.

    Preprocessing follows ``imagebind.data``: BPE tokens (77) for text; bicubic resize to
    224, centre crop, CLIP normalisation for images; for audio at 16 kHz, 3 clips of 2 s
    spread over the example, 128-bin Kaldi fbank of 204 frames each, normalised, their
    embeddings averaged.
    """

    modalities = ("text", "image", "audio")
    sample_rate = 16000

    def __init__(self, checkpoint_path: Union[str, os.PathLike],
                 model_kwargs: Optional[dict] = None, device: Union[str, torch.device] = "cpu"):
        super().__init__()
        path = Path(checkpoint_path)
        if not path.is_file():
            raise FileNotFoundError(f"No ImageBind checkpoint at {path}. {CHECKPOINT_HELP}.")
        self._data, model_module = import_imagebind()
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(f"{path} is not a readable ImageBind checkpoint: {err}") from None
        if isinstance(ckpt, dict) and "state_dict" in ckpt:
            model_kwargs = model_kwargs or ckpt.get("model_kwargs")
            ckpt = ckpt["state_dict"]
        self.model_kwargs = dict(model_kwargs or IMAGEBIND_HUGE)
        self.model = model_module.ImageBindModel(**self.model_kwargs)
        try:
            self.model.load_state_dict(ckpt)
        except (RuntimeError, AttributeError, TypeError) as err:
            raise ValueError(f"{path} does not match ImageBindModel({self.model_kwargs}): "
                             f"{str(err)[:500]}") from None
        self.dim = int(self.model_kwargs.get("out_embed_dim", 768))
        tokenizer_module = sys.modules["imagebind.models.multimodal_preprocessors"]
        bpe = importlib.resources.files("imagebind") / "bpe" / "bpe_simple_vocab_16e6.txt.gz"
        self._tokenizer = tokenizer_module.SimpleTokenizer(bpe_path=str(bpe))
        self.to(device)
        self.freeze()

    def _run(self, key: str, value: torch.Tensor) -> torch.Tensor:
        return self.model({key: value.to(self.device)})[key]

    def _embed_text(self, texts: List[str]) -> torch.Tensor:
        tokens = torch.stack([self._tokenizer(t) for t in texts])
        return self._run("text", tokens)

    def _embed_image(self, images: ImageInput) -> torch.Tensor:
        from torchvision.transforms import v2

        if isinstance(images, torch.Tensor):
            pixels = v2.Compose([
                v2.Resize(224, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
                v2.CenterCrop(224),
                v2.Normalize(_IMAGE_MEAN, _IMAGE_STD),
            ])(images.float().clamp(0, 1))
        else:
            from PIL import UnidentifiedImageError
            paths = [str(p) for p in images]
            for p in paths:
                if not os.path.isfile(p):
                    raise FileNotFoundError(f"No image file at {p}")
            try:
                pixels = self._data.load_and_transform_vision_data(paths, "cpu")
            except (UnidentifiedImageError, OSError) as err:
                raise ValueError(f"Cannot read image: {err}") from None
        return self._run("vision", pixels)

    def _embed_audio(self, wav: torch.Tensor) -> torch.Tensor:
        return self._run("audio", torch.stack([self.audio_clips(w) for w in wav]))

    def audio_clips(self, wav: torch.Tensor) -> torch.Tensor:
        """ImageBind's audio input for one example ``[time]`` -> ``[3, 1, 128, 204]``."""
        from pytorchvideo.data.clip_sampling import ConstantClipsPerVideoSampler

        sr = self.sample_rate
        sampler = ConstantClipsPerVideoSampler(clip_duration=_AUDIO["clip_duration"],
                                               clips_per_video=_AUDIO["clips_per_video"])
        min_len = int(0.025 * sr)  # one 25-ms fbank frame
        if wav.shape[-1] < min_len:
            wav = torch.nn.functional.pad(wav, (0, min_len - wav.shape[-1]))
        clips = []
        for start, end in self._data.get_clip_timepoints(sampler, wav.shape[-1] / sr):
            segment = wav[int(start * sr): int(end * sr)].clone()[None].cpu()
            if segment.shape[-1] < min_len:
                segment = torch.nn.functional.pad(segment, (0, min_len - segment.shape[-1]))
            mel = self._data.waveform2melspec(segment, sr, _AUDIO["num_mel_bins"],
                                              _AUDIO["target_length"])
            clips.append((mel - _AUDIO["mean"]) / _AUDIO["std"])
        return torch.stack(clips)
