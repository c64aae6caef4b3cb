"""The Lightning system that trains OmniSep (loss, optimiser, schedule, validation)."""
import bisect
from typing import Dict, Sequence, Union

import pytorch_lightning as pl
import torch
from torchmetrics.functional import scale_invariant_signal_distortion_ratio

from ..losses import check_mask_target
from ..models import OmniSep
from ..query.ops import QueryMixup


def warmup_step_decay(warmup_steps: int, decay_steps: Union[int, Sequence[int]],
                      decay_factor: float):
    """CLIPSep's schedule as a LambdaLR factor: linear warm-up over ``warmup_steps``, then
    the full rate, multiplied by ``decay_factor`` from step ``decay_steps`` on (a list of
    steps: once more at each of them, as MultiStepLR does).

    Example:
        >>> f = warmup_step_decay(10, 100, 0.1)
        >>> [round(f(s), 2) for s in (0, 4, 9, 50, 100)]
        [0.1, 0.5, 1.0, 1.0, 0.1]
        >>> g = warmup_step_decay(10, [100, 200], 0.1)
        >>> [round(g(s), 3) for s in (50, 100, 199, 200)]
        [1.0, 0.1, 0.1, 0.01]
    """
    milestones = sorted([decay_steps] if isinstance(decay_steps, int) else decay_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return decay_factor ** bisect.bisect_right(milestones, step)
    return factor


class OmniSepSystem(pl.LightningModule):
    """Trains an :class:`OmniSep` on batches of :class:`~omnisep_plugin.data.mixtures.MixtureDataset`.

    The training step takes the batch's ``mixture`` (the sum of the sources, plus a
    background when the data are augmented; ``sources.sum(1)`` if absent), builds one
    query per source with :class:`QueryMixup` from the cached embeddings, and minimises the
    weighted BCE of eq. 3 (STFT, warp and targets all on the device, inside the model), plus
    ``wave_loss_weight`` times the separated signals' negative SNR when that is set.
    Validation separates fixed mixtures with the equal-weight query of the training
    modalities and logs the mean SI-SDR (``val_si_sdr``).

    Args:
        model_args: ``OmniSep`` keyword arguments.
        modalities: training query modalities; mixup_mode / per_example: see QueryMixup.
        lr, betas, eps: Adam; warmup_steps, decay_steps, decay_factor: the schedule.
        mask_target: the masks' training target (:meth:`OmniSep.compute_loss`): ``binary``
            (eq. 3) or ``ratio``.
        wave_loss_weight: weight of the waveform term of :meth:`OmniSep.compute_loss` (the
            present sources' negative SNR in dB; 0: the paper's loss alone).
        seed: the Query-Mixup draws of micro-batch ``m`` of step ``s`` on rank ``r`` use a
            generator seeded by ``(seed, s * accumulate_grad_batches + m, r)``, so a resumed
            run draws what the uninterrupted one would.
    """

    def __init__(self, model_args: Dict, modalities: Sequence[str] = ("text", "image", "audio"),
                 mixup_mode: str = "mixup", per_example: bool = True, lr: float = 1e-3,
                 betas=(0.9, 0.999), eps: float = 1e-8, warmup_steps: int = 5000,
                 decay_steps: Union[int, Sequence[int]] = 100000, decay_factor: float = 0.1,
                 mask_target: str = "binary", wave_loss_weight: float = 0.0, seed: int = 0):
        super().__init__()
        check_mask_target(mask_target)
        self.save_hyperparameters()
        self.model = OmniSep(**model_args)
        self.mixup = QueryMixup(modalities, mode=mixup_mode, per_example=per_example)

    def queries(self, batch, micro_batch: int = 0) -> torch.Tensor:
        """One query per source ``[B, n_src, dim]`` from the cached embeddings
        (``micro_batch``: the batch's place within a step that accumulates gradients)."""
        names = self.mixup.modalities
        b, n = batch["sources"].shape[:2]
        embs = {m: batch[f"{m}_emb"].flatten(0, 1) for m in names}
        avail = {m: batch[f"has_{m}"].flatten() for m in names}
        draw = self.global_step * self._accumulate() + micro_batch
        step_seed = (self.hparams.seed * 1_000_003 + draw) * 1009 + self.global_rank
        generator = torch.Generator().manual_seed(step_seed)
        return self.mixup(embs, avail, generator=generator).reshape(b, n, -1)

    def _accumulate(self) -> int:
        trainer = self._trainer
        return trainer.accumulate_grad_batches if trainer is not None else 1

    def training_step(self, batch, batch_idx):
        sources = batch["sources"]
        mixture = batch["mixture"] if "mixture" in batch else sources.sum(1)
        query = self.queries(batch, batch_idx % self._accumulate())
        loss = self.model.compute_loss(mixture, sources, query, self.hparams.mask_target,
                                       self.hparams.wave_loss_weight)
        self.log("train_loss", loss, prog_bar=True, batch_size=sources.shape[0])
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=1)
        return loss

    def validation_step(self, batch, batch_idx):
        sources = batch["sources"]
        est = self.model(sources.sum(1), self.queries(batch))
        si_sdr = scale_invariant_signal_distortion_ratio(est.float(), sources.float()).mean()
        self.log("val_si_sdr", si_sdr, prog_bar=True, sync_dist=True, batch_size=sources.shape[0])
        loss = self.model.compute_loss(sources.sum(1), sources, self.queries(batch),
                                       self.hparams.mask_target, self.hparams.wave_loss_weight)
        self.log("val_loss", loss, sync_dist=True, batch_size=sources.shape[0])

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None,
                                    gradient_clip_algorithm=None):
        """Clip the global gradient norm (``training.grad_clip``) directly: Lightning's
        mixed-precision plugin refuses to clip for a fused optimiser, although bf16 involves
        no loss scaling."""
        if gradient_clip_val:
            torch.nn.utils.clip_grad_norm_(self.parameters(), gradient_clip_val)

    def configure_optimizers(self):
        hp = self.hparams
        # one fused kernel per step instead of a dozen passes over the weights (CPU and GPU)
        opt = torch.optim.Adam(self.parameters(), lr=hp.lr, betas=tuple(hp.betas), eps=hp.eps,
                               fused=self.device.type in ("cpu", "cuda"))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, warmup_step_decay(hp.warmup_steps, hp.decay_steps, hp.decay_factor))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def model_from_checkpoint(path) -> OmniSep:
    """The network of an ``omnisep train`` checkpoint (``<exp>/checkpoints/*.ckpt``), as the
    run's export would be at that step: an :class:`OmniSep` built from the checkpoint's
    ``model_args`` with its weights, in eval mode (no mask-temperature table: the export
    stage adds one). A file that is not such a checkpoint is a ``ValueError``."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        args = ckpt["hyper_parameters"]["model_args"]
        weights = {k[len("model."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    except Exception as err:  # unreadable, or another kind of file
        raise ValueError(f"{path} is not a checkpoint of `omnisep train` ({type(err).__name__}: "
                         f"{err})") from None
    model = OmniSep(**args)
    model.load_state_dict(weights)
    return model.eval()
