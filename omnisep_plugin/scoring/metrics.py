"""The scores of one estimate: SDR (museval BSS Eval v4 or fast_bss_eval), SI-SDR, their
improvements over the mixture, and asteroid's extra metrics.

Silent files (mean power below ``SILENCE_POWER``, -80 dBFS):

- a silent *reference* has no defined SDR: :func:`score_pair` returns None and the pair is
  counted in the table's ``silent`` column, never averaged;
- a silent *estimate* (``omnisep separate`` writes one for a silent input, by design) is
  scored, not fatal: BSS Eval refuses an all-zero estimate, so its SDR and SI-SDR are the
  signal-to-error ratio of an all-zero estimate, ``10 log10(|s|^2 / |s - 0|^2) = 0 dB``
  (what it recovers: nothing; an estimate of the wrong source scores lower), SDRi and
  SI-SDRi are measured against the mixture as usual, and the row is flagged
  ``silent_estimate`` (counted under the table).
"""
from typing import Dict, Iterable, List, Optional

import numpy as np

SILENCE_POWER = 1e-8
FAST_TOLERANCE_DB = 0.01
METRICS = ("sdr", "sdri", "si_sdr", "si_sdri", "stoi", "pesq")
#: asteroid metrics ``--extra-metrics`` may add (SDR and SI-SDR are always computed).
EXTRA_METRICS = ("stoi", "pesq")
PESQ_RATES = (8000, 16000)
#: SDR / SI-SDR of an all-zero estimate (see the module docstring).
SILENT_ESTIMATE_DB = 0.0


def bss_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """museval BSS Eval v4 SDR of one mono estimate, one window over the whole clip: the
    "images" variant, whose target part is the reference itself, so this is the SNR
    ``10 log10(|s|^2 / |s - s_hat|^2)`` (a gain or filter error counts as error)."""
    import museval

    n = len(reference)
    sdr, _, _, _ = museval.evaluate(reference[None, :, None], estimate[None, :n, None],
                                    win=n, hop=n)
    return float(sdr[0, 0])


def fast_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """fast_bss_eval's SDR (BSS Eval sources, 512-tap distortion filter) of one estimate."""
    import fast_bss_eval

    return float(fast_bss_eval.sdr(reference[None], estimate[None, :len(reference)],
                                   filter_length=512)[0])


SDR_BACKENDS = {"museval": bss_sdr, "fast": fast_sdr}


def check_extra_metrics(names: Iterable[str]) -> List[str]:
    """The names, or ValueError naming an unknown one."""
    names = [n.strip() for n in names if n.strip()]
    unknown = sorted(set(names) - set(EXTRA_METRICS))
    if unknown:
        raise ValueError(f"Unknown extra metric(s) {unknown}; choose from {list(EXTRA_METRICS)}")
    return names


def is_silent(x: np.ndarray) -> bool:
    return float(np.mean(np.square(x))) < SILENCE_POWER


def score_pair(reference: np.ndarray, estimate: np.ndarray, mixture: Optional[np.ndarray],
               sample_rate: int = 16000, backend: str = "museval",
               extra_metrics: Iterable[str] = (),
               mixture_sdr: Optional[float] = None) -> Optional[Dict[str, float]]:
    """SDR, SDRi, SI-SDR, SI-SDRi of one estimate; None for a silent reference.

    Args:
        reference, estimate, mixture: mono ``[time]`` arrays (the estimate is cut or
            zero-padded to the reference's length). Without a mixture, SDRi and SI-SDRi
            are left out of the result.
        backend: ``museval`` or ``fast`` (see :mod:`omnisep_plugin.scoring`).
        extra_metrics: more of ``asteroid.metrics.get_metrics``' set (``stoi``, ``pesq``;
            left out for a silent estimate).
        mixture_sdr: the mixture's own SDR against the reference, when already known (it is
            the same for every estimate of one target: :func:`score_pairs` caches it).

    Returns:
        the metrics, with ``silent_estimate`` True when the estimate is silent (scored as
        ``SILENT_ESTIMATE_DB``, see the module docstring).
    """
    from asteroid.metrics import get_metrics

    reference = np.asarray(reference, dtype=np.float64)
    estimate = _fit(np.asarray(estimate, dtype=np.float64), len(reference))
    for name, x in (("Reference", reference), ("Estimate", estimate), ("Mixture", mixture)):
        if x is not None and not np.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or Inf samples")
    if is_silent(reference):
        return None
    sdr = SDR_BACKENDS[backend]
    mix = _fit(np.asarray(mixture, dtype=np.float64), len(reference)) if mixture is not None else None
    silent_est = is_silent(estimate) or not np.any(estimate)
    extra = check_extra_metrics(extra_metrics)
    if silent_est:
        out = {"sdr": SILENT_ESTIMATE_DB, "si_sdr": SILENT_ESTIMATE_DB}
        input_si_sdr = (float(get_metrics(mix[None], reference[None], mix[None],
                                          sample_rate=sample_rate, metrics_list=["si_sdr"],
                                          average=True)["input_si_sdr"])
                        if mix is not None else None)
    else:
        out = {"sdr": sdr(reference, estimate)}
        m = get_metrics((mix if mix is not None else estimate)[None], reference[None],
                        estimate[None], sample_rate=sample_rate,
                        metrics_list=["si_sdr", *extra], average=True)
        out["si_sdr"] = float(m["si_sdr"])
        out.update({name: float(m[name]) for name in extra})
        input_si_sdr = float(m["input_si_sdr"])
    if mix is not None:
        if mixture_sdr is None:
            mixture_sdr = SILENT_ESTIMATE_DB if is_silent(mix) else sdr(reference, mix)
        out["sdri"] = out["sdr"] - mixture_sdr
        out["si_sdri"] = out["si_sdr"] - input_si_sdr
    out["silent_estimate"] = bool(silent_est)
    return out


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))
