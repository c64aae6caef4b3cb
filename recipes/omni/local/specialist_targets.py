"""The targets of the instrument specialist's 11 labels inside a test set of recipes/omni:
which network answers them better (docs/results.md sections 6 and 17):

    # the mixtures that hold at least one of the 11 (for separate-test on fewer mixtures)
    python recipes/omni/local/specialist_targets.py subset \
        data/omni/embedded/test_mixtures.json exp/omni_s23/test_inst_mixtures.json
    omnisep separate-test omnisep_plugin/pretrained/default/omnisep.pth \
        data/omni/embedded/omni_cuts_test_embedded.jsonl.gz \
        exp/omni_s23/test_inst_mixtures.json exp/omni_s23/default_test ...   # stage 5's options
    # SDRi of those targets against --model omni's stage-5 estimates: compare_runs.py
    python recipes/omni/local/compare_runs.py data/omni/embedded/test_mixtures.json \
        data/omni/corpus/classes.json exp/omni_s23/default_test exp/omni_s22/model/test \
        --kinds text,composed+resid,audio+label+resid --labels "accordion,acoustic guitar,..."
    # a gate that runs both networks and keeps the estimate nearer the label's audio
    # prototype (cosine of the bound encoder's embeddings; section 17, not adopted)
    python recipes/omni/local/specialist_targets.py gate \
        data/omni/embedded/test_mixtures.json exp/omni_s23/default_test text \
        exp/omni_s22/model/test composed+resid --margins 0 0.05 0.1

A folder needs ``refs/``, ``mix/`` and ``est/<kind>/`` with ``<mixture id>_<source>.wav``
(what ``omnisep separate-test`` writes); only targets of the 11 labels are read.
"""
import argparse
import json
from typing import List, Set, Tuple

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from omnisep_plugin.pipelines import INSTRUMENTS, OMNI
from omnisep_plugin.query.offline import OfflineEncoder
from omnisep_plugin.scoring.metrics import fast_sdr


def specialist_labels() -> Set[str]:
    """The labels whose text queries the specialist ships (its 11 instruments' spellings)."""
    return set(torch.load(INSTRUMENTS.text_queries, weights_only=False)["texts"])


def targets(mixtures_path: str, labels: Set[str]) -> List[Tuple[str, str]]:
    """``(file stem, label)`` of every source of the mixtures whose label is in ``labels``."""
    mixtures = json.load(open(mixtures_path))["mixtures"]
    return [(f"{m['id']}_{i}", s["label"]) for m in mixtures
            for i, s in enumerate(m["sources"]) if s["label"] in labels]


def subset(mixtures_path: str, out_path: str, labels: Set[str]) -> int:
    """Write the mixtures that hold a source of ``labels``; return how many."""
    data = json.load(open(mixtures_path))
    data["mixtures"] = [m for m in data["mixtures"] if any(s["label"] in labels for s in m["sources"])]
    with open(out_path, "w") as f:
        json.dump(data, f)
    return len(data["mixtures"])


def _read(path: str) -> np.ndarray:
    return sf.read(path, dtype="float64")[0]


def gate(stems: List[Tuple[str, str]], specialist: Tuple[str, str], omni: Tuple[str, str],
         margins: List[float]) -> None:
    """Print, per margin, the SDRi of keeping the specialist's ``(folder, kind)`` estimate
    when its cosine to the label's audio prototype (``--model omni``'s) is above the
    open-domain estimate's minus the margin, and the open-domain one otherwise; with each
    network alone and the better of the two per target (an oracle). Means over targets."""
    encoder = OfflineEncoder(OMNI.audio_encoder)
    protos = torch.load(OMNI.audio_prototypes, weights_only=False)
    proto = dict(zip(protos["labels"], F.normalize(protos["embeddings"], dim=-1)))

    def cosine(wav: np.ndarray, label: str) -> float:
        emb = encoder.embed_audio(torch.tensor(wav, dtype=torch.float32)[None])[0]
        return float(F.normalize(emb, dim=-1) @ proto[label.replace("_", " ")])

    rows = []
    for stem, label in stems:
        ref, mix = _read(f"{specialist[0]}/refs/{stem}.wav"), _read(f"{specialist[0]}/mix/{stem}.wav")
        ests = [_read(f"{folder}/est/{kind}/{stem}.wav") for folder, kind in (specialist, omni)]
        base = fast_sdr(ref, mix)
        rows.append([fast_sdr(ref, e) - base for e in ests] + [cosine(e, label) for e in ests])
    a = np.array(rows)
    print(f"{len(a)} targets: specialist {a[:, 0].mean():.2f}, open-domain {a[:, 1].mean():.2f}, "
          f"the better per target {np.maximum(a[:, 0], a[:, 1]).mean():.2f} dB SDRi")
    for margin in margins:
        keep = a[:, 2] > a[:, 3] - margin
        print(f"margin {margin:g}: {np.where(keep, a[:, 0], a[:, 1]).mean():.2f} dB, "
              f"the specialist's estimate kept for {100 * keep.mean():.0f} %")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("subset", help="write the mixtures that hold one of the 11 labels")
    sp.add_argument("mixtures")
    sp.add_argument("out")
    gt = sub.add_parser("gate", help="keep the estimate nearer the label's prototype")
    gt.add_argument("mixtures")
    gt.add_argument("specialist_folder")
    gt.add_argument("specialist_kind")
    gt.add_argument("omni_folder")
    gt.add_argument("omni_kind")
    gt.add_argument("--margins", nargs="+", type=float, default=[0.0])
    args = ap.parse_args()
    labels = specialist_labels()
    if args.command == "subset":
        print(f"{subset(args.mixtures, args.out, labels)} mixtures -> {args.out}")
        return
    gate(targets(args.mixtures, labels), (args.specialist_folder, args.specialist_kind),
         (args.omni_folder, args.omni_kind), args.margins)


if __name__ == "__main__":
    main()
