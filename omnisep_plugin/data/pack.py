"""A pre-rendered, compressed training corpus that travels (for example to a GPU machine that
reaches no registry) and unpacks into the manifests ``omnisep train`` reads.

A pack is one uncompressed tar archive:

- ``pack.json``: format version, sample rate, Opus compression level and bit rate, counts;
- ``audio/<split>/<cut_id>.opus``: each cut's audio, mono, Ogg Opus at the model's rate;
- ``cuts_<split>.jsonl.gz``: the embedded cuts (every ``custom`` field kept: label, text,
  category, source package, original files, licence), recordings pointing into ``audio/``,
  the query arrays moved to ``embeddings_<split>.npz`` (``ids``, ``text``, ``audio``, fp16);
- ``backgrounds/``: the background recordings of ``data.augment.backgrounds`` (Opus) and
  their ``backgrounds.json`` (licence records kept);
- extra files given by name (the fixed validation mixtures, the audio encoder, the query set).

The Opus compression level is the lowest (best quality) whose archive fits ``max_mib``,
estimated on a sample of cuts and checked on the result. :func:`unpack_corpus` decodes the
audio back to 16-bit WAV, writes the query arrays with Lhotse's ``NumpyFilesWriter`` and
returns the paths of the manifests it wrote. Encoding and decoding run in threads (libsndfile
releases the GIL; forked workers can deadlock on locks held by torch's threads).
"""
import gzip
import io
import json
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
import soundfile as sf
from lhotse import CutSet, Recording

from .embed import cut_label

Pathlike = Union[str, os.PathLike]
FORMAT_VERSION = 1
#: Opus compression levels tried, best quality first (soundfile's 0..1 scale). On 12 corpus
#: clips at 16 kHz: 79, 56, 41, 30, 23, 19, 13, 12 and 9 kbit/s; median SNR of the round trip
#: 28, 24, 22, 18, 15, 12, 11, 8 and 5 dB (a perceptual codec: SNR understates its quality).
LEVELS = (0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99)
QUERY_KINDS = ("text", "audio")


class PackError(ValueError):
    """A pack that cannot be written or read (budget, corrupt archive, wrong version)."""


def encode_opus(wav: np.ndarray, sample_rate: int, level: float) -> bytes:
    """Mono ``[time]`` float audio -> Ogg Opus bytes at compression ``level`` (0 best, 1 smallest)."""
    buf = io.BytesIO()
    sf.write(buf, wav, sample_rate, format="OGG", subtype="OPUS", compression_level=level)
    return buf.getvalue()


def decode_audio(data: bytes) -> np.ndarray:
    """Encoded audio bytes -> float32 ``[time]``."""
    wav, _ = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return wav[:, 0]


def _cut_audio(cut) -> np.ndarray:
    return cut.load_audio()[0].astype(np.float32)


def _encode_cut(args):
    cut, level = args
    return cut.id, encode_opus(_cut_audio(cut), cut.sampling_rate, level)


def _encode_file(args):
    path, sample_rate, level = args
    from .recipes.omni import read_mono
    wav = read_mono(path, sample_rate)
    return encode_opus(wav, sample_rate, level)


def _choose_level(cuts: Sequence, budget_bytes: float, total_seconds: float, level: Optional[float],
                  sample: int = 24) -> float:
    """The best-quality level whose bytes per second, on ``sample`` cuts spread over the
    corpus, predict an archive within ``budget_bytes`` (10 % margin)."""
    if level is not None:
        return level
    picked = [cuts[i] for i in np.linspace(0, len(cuts) - 1, min(sample, len(cuts))).astype(int)]
    seconds = sum(c.duration for c in picked)
    audio = [(_cut_audio(c), c.sampling_rate) for c in picked]   # read once, encoded per level
    for candidate in LEVELS:
        rate = sum(len(encode_opus(wav, sr, candidate)) for wav, sr in audio) / seconds
        if rate * total_seconds <= 0.9 * budget_bytes:
            return candidate
    raise PackError(f"{total_seconds / 60:.0f} minutes of audio do not fit {budget_bytes / 2**20:.1f} MiB "
                    f"even at the smallest Opus level ({LEVELS[-1]}): raise --max-mib or pack fewer cuts")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _strip_queries(cut) -> dict:
    d = cut.to_dict()
    for kind in QUERY_KINDS:
        d.get("custom", {}).pop(f"{kind}_emb", None)
    return d


def _jsonl_gz(rows: Iterable[dict]) -> bytes:
    return gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())


def _write_pack(tmp: Path, splits: Dict[str, list], bg: dict, extras: List[Path], level: float,
                rate: int, bg_seconds: float, num_jobs: int) -> dict:
    audio_bytes = 0
    with tarfile.open(tmp, "w") as tar, ThreadPoolExecutor(max(1, num_jobs)) as pool:
        for split, cuts in splits.items():
            for cut_id, data in pool.map(_encode_cut, [(c, level) for c in cuts], chunksize=8):
                _add_bytes(tar, f"audio/{split}/{cut_id}.opus", data)
                audio_bytes += len(data)
            _add_bytes(tar, f"cuts_{split}.jsonl.gz", _jsonl_gz(_strip_queries(c) for c in cuts))
            buf = io.BytesIO()
            np.savez_compressed(buf, ids=np.array([c.id for c in cuts]), **{
                kind: np.stack([c.load_custom(f"{kind}_emb") for c in cuts]).astype(np.float16)
                for kind in QUERY_KINDS})
            _add_bytes(tar, f"embeddings_{split}.npz", buf.getvalue())
        names = [f"backgrounds/{i:04d}.opus" for i in range(len(bg["files"]))]
        for name, data in zip(names, pool.map(_encode_file, [(f, rate, level) for f in bg["files"]])):
            _add_bytes(tar, name, data)
            audio_bytes += len(data)
        if names:
            _add_bytes(tar, "backgrounds/backgrounds.json", json.dumps({**bg, "files": names}, indent=1).encode())
        for path in extras:
            tar.add(path, arcname=path.name)
        seconds = sum(c.duration for cuts in splits.values() for c in cuts) + bg_seconds
        record = {"format": FORMAT_VERSION, "sample_rate": rate, "opus_level": level,
                  "kbit_s": round(audio_bytes * 8 / seconds / 1000, 1),
                  "cuts": {s: len(c) for s, c in splits.items()}, "backgrounds": len(names),
                  "extra_files": [p.name for p in extras], "audio_hours": round(seconds / 3600, 2)}
        _add_bytes(tar, "pack.json", json.dumps(record, indent=1).encode())
    return record


def cap_per_label(cuts: Sequence, n: int) -> list:
    """At most ``n`` cuts of each label, evenly spaced through each label's cuts in manifest
    order (so every soundfont or voice of a class keeps its share); order kept."""
    by_label: Dict[str, list] = {}
    for i, cut in enumerate(cuts):
        by_label.setdefault(cut_label(cut), []).append(i)
    keep = set()
    for idx in by_label.values():
        keep.update(idx[int(k)] for k in np.unique(np.linspace(0, len(idx) - 1, min(n, len(idx))).round()))
    return [c for i, c in enumerate(cuts) if i in keep]


def pack_corpus(cut_sets: Dict[str, CutSet], output: Pathlike, max_mib: float = 26.0,
                backgrounds: Optional[Pathlike] = None, extra_files: Sequence[Pathlike] = (),
                level: Optional[float] = None, num_jobs: int = 1,
                per_class: Optional[int] = None) -> dict:
    """Write the pack ``output`` (a ``.tar``) of the embedded cut sets ``{split: cuts}``.

    Args:
        cut_sets: e.g. ``{"train": ..., "valid": ...}``; every cut must carry ``text_emb`` and
            ``audio_emb`` (as :func:`~omnisep_plugin.data.embed.embed_cuts` writes them).
        max_mib: size limit of the whole archive; the Opus level is chosen to fit it.
        backgrounds: a ``backgrounds.json`` (``data.augment.backgrounds``) to pack with its audio.
        extra_files: small files stored at the archive's top level under their own names.
        level: a fixed Opus compression level instead of the budget's choice.
        per_class: pack at most this many cuts of each label per split (:func:`cap_per_label`):
            fewer, better-sounding clips when the corpus outgrows the budget.

    Returns the ``pack.json`` record (level, kbit/s, cuts per split, bytes).
    """
    output = Path(output)
    budget = max_mib * 2 ** 20
    splits = {name: list(cuts) for name, cuts in cut_sets.items()}
    if per_class is not None:
        splits = {name: cap_per_label(cuts, per_class) for name, cuts in splits.items()}
    all_cuts = [c for cuts in splits.values() for c in cuts]
    if not all_cuts:
        raise PackError("nothing to pack: every cut set is empty")
    missing = [c.id for c in all_cuts if not all(c.has_custom(f"{k}_emb") for k in QUERY_KINDS)]
    if missing:
        raise PackError(f"{len(missing)} cuts have no text_emb/audio_emb (run `omnisep embed` first), "
                        f"e.g. {missing[0]}")
    extras = [Path(p) for p in extra_files]
    fixed = sum(p.stat().st_size for p in extras)
    bg = json.loads(Path(backgrounds).read_text()) if backgrounds else {"files": []}
    bg = bg if isinstance(bg, dict) else {"files": bg}
    bg_files = bg["files"]
    rate = all_cuts[0].sampling_rate
    bg_seconds = sum(sf.info(f).duration for f in bg_files)
    level = _choose_level(all_cuts, budget - fixed, sum(c.duration for c in all_cuts) + bg_seconds, level)

    tmp = output.with_name(output.name + ".tmp")
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        record = _write_pack(tmp, splits, bg, extras, level, rate, bg_seconds, num_jobs)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    size = tmp.stat().st_size
    if size > budget:
        tmp.unlink()
        raise PackError(f"the pack came to {size / 2**20:.1f} MiB, over --max-mib {max_mib}: "
                        f"give a higher --level than {level}")
    os.replace(tmp, output)
    return {**record, "bytes": size}


def _decode_to_wav(args):
    data, path, rate = args
    sf.write(str(path), decode_audio(data), rate, subtype="PCM_16")


def unpack_corpus(pack: Pathlike, output_dir: Pathlike, num_jobs: int = 1) -> dict:
    """Unpack ``pack`` into ``output_dir``: WAV audio, ``cuts_<split>_embedded.jsonl.gz``
    (recordings and query arrays at their new absolute paths), ``backgrounds.json``, and the
    extra files. Returns ``{"pack": record, "cuts": {split: path}, "backgrounds": path or
    None, "extra": {name: path}}``."""
    from lhotse.features.io import NumpyFilesWriter

    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    try:
        tar = tarfile.open(pack, "r")
    except (tarfile.TarError, OSError) as e:
        raise PackError(f"{pack}: not a readable corpus pack ({e})") from None
    with tar, ThreadPoolExecutor(max(1, num_jobs)) as pool:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        if "pack.json" not in members:
            raise PackError(f"{pack}: no pack.json (not a corpus pack, or a truncated one)")
        record = json.loads(tar.extractfile(members["pack.json"]).read())
        if record.get("format") != FORMAT_VERSION:
            raise PackError(f"{pack}: pack format {record.get('format')}, this version reads {FORMAT_VERSION}")
        rate = record["sample_rate"]
        result = {"pack": record, "cuts": {}, "backgrounds": None, "extra": {}}

        def decode_all(names: List[str]) -> None:
            jobs = ((tar.extractfile(members[n]).read(), out / Path(n).with_suffix(".wav"), rate)
                    for n in names)
            for n in names:
                (out / n).parent.mkdir(parents=True, exist_ok=True)
            list(pool.map(_decode_to_wav, jobs, chunksize=8))

        for split in record["cuts"]:
            rows = [json.loads(line) for line in
                    gzip.decompress(tar.extractfile(members[f"cuts_{split}.jsonl.gz"]).read()).splitlines()]
            decode_all([f"audio/{split}/{r['id']}.opus" for r in rows])
            emb = np.load(io.BytesIO(tar.extractfile(members[f"embeddings_{split}.npz"]).read()))
            vectors = {kind: dict(zip(emb["ids"].tolist(), emb[kind].astype(np.float32)))
                       for kind in QUERY_KINDS}
            cuts = []
            with NumpyFilesWriter(out / "arrays" / split) as writer:
                for cut in CutSet.from_dicts(rows):
                    rec = Recording.from_file(out / "audio" / split / f"{cut.id}.wav", recording_id=cut.recording.id)
                    cut.recording = rec
                    for kind in QUERY_KINDS:
                        cut = cut.with_custom(f"{kind}_emb", writer.store_array(f"{cut.id}.{kind}", vectors[kind][cut.id]))
                    cuts.append(cut)
            path = out / f"cuts_{split}_embedded.jsonl.gz"
            CutSet.from_cuts(cuts).to_file(path)
            result["cuts"][split] = path
        if "backgrounds/backgrounds.json" in members:
            bg = json.loads(tar.extractfile(members["backgrounds/backgrounds.json"]).read())
            decode_all(bg["files"])
            bg["files"] = [str(out / Path(f).with_suffix(".wav")) for f in bg["files"]]
            result["backgrounds"] = out / "backgrounds.json"
            result["backgrounds"].write_text(json.dumps(bg, indent=1))
        for name in record.get("extra_files", []):
            (out / name).write_bytes(tar.extractfile(members[name]).read())
            result["extra"][name] = out / name
    return result
