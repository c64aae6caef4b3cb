"""Class vocabularies and free-text descriptions (the paper's free-text query set-up).

Every class label is paired with a free description, e.g. ``"dog barking"`` ->
``"A dog letting out barking noises."`` (the paper's example). MUSIC's 11 instruments have
hand-written descriptions; VGGSound classes without an entry in a user-supplied table get a
template description (see :func:`describe`).
"""
import csv
from pathlib import Path
from typing import Dict, Iterable, Optional

MUSIC_INSTRUMENTS = (
    "accordion", "acoustic_guitar", "cello", "clarinet", "erhu", "flute", "saxophone",
    "trumpet", "tuba", "violin", "xylophone",
)

MUSIC_DESCRIPTIONS = {
    "accordion": "Someone squeezing an accordion, its reeds playing a wheezing melody.",
    "acoustic_guitar": "A person strumming and plucking the strings of an acoustic guitar.",
    "cello": "A cello played with a bow, giving a deep and warm singing tone.",
    "clarinet": "A clarinet played by a musician, with a smooth woody reed sound.",
    "erhu": "An erhu, the two-stringed Chinese fiddle, bowed in a plaintive voice.",
    "flute": "A flute player blowing an airy, bright melody.",
    "saxophone": "A saxophone played with a rich, buzzing reed tone.",
    "trumpet": "A trumpet blowing bright, brassy notes.",
    "tuba": "A tuba playing low, round brass notes.",
    "violin": "Someone bowing a violin, producing a high singing melody.",
    "xylophone": "Mallets striking the wooden bars of a xylophone.",
    "oboe": "An oboe playing a nasal, penetrating double-reed melody.",
    "dog barking": "A dog letting out barking noises.",
    # synth_sfx classes (General MIDI sound effects and drums)
    "fret_noise": "Fingers squeaking and sliding along guitar strings.",
    "breath": "Someone breathing heavily in and out.",
    "seashore": "Waves rolling in and crashing on a beach.",
    "bird": "A bird chirping and tweeting.",
    "telephone": "A telephone ringing.",
    "helicopter": "A helicopter's rotor blades thumping overhead.",
    "applause": "A crowd of people clapping their hands.",
    "gunshot": "Guns being fired, sharp loud bangs.",
    "drums": "Someone playing a drum kit, beating drums and cymbals.",
}

#: VGGSound's musical-instrument classes, removed from OmniSep's VGGSound training set.
VGGSOUND_INSTRUMENT_CLASSES = frozenset({
    "playing accordion", "playing acoustic guitar", "playing bagpipes", "playing banjo",
    "playing bass drum", "playing bass guitar", "playing bassoon", "playing bongo",
    "playing bugle", "playing castanets", "playing cello", "playing clarinet",
    "playing congas", "playing cornet", "playing cymbal", "playing didgeridoo",
    "playing djembe", "playing double bass", "playing drum kit", "playing electric guitar",
    "playing electronic organ", "playing erhu", "playing flute", "playing french horn",
    "playing glockenspiel", "playing gong", "playing guiro", "playing hammond organ",
    "playing harmonica", "playing harp", "playing harpsichord", "playing mandolin",
    "playing marimba, xylophone", "playing oboe", "playing piano", "playing saxophone",
    "playing shofar", "playing sitar", "playing snare drum",
    "playing steel guitar, slide guitar", "playing steelpan", "playing synthesizer",
    "playing tabla", "playing tambourine", "playing theremin", "playing timbales",
    "playing timpani", "playing trombone", "playing trumpet", "playing tuba",
    "playing tympani", "playing ukulele", "playing vibraphone", "playing violin, fiddle",
    "playing zither", "orchestra", "tapping guitar",
})


def describe(label: str, table: Optional[Dict[str, str]] = None) -> str:
    """Free-text description of a class: the table's entry, else a template sentence.

    Example:
        >>> describe("dog barking")
        'A dog letting out barking noises.'
        >>> describe("acoustic_guitar", {})
        'The sound of acoustic guitar.'
    """
    table = MUSIC_DESCRIPTIONS if table is None else table
    if label in table:
        return table[label]
    return f"The sound of {label.replace('_', ' ')}."


def load_description_table(path: Path) -> Dict[str, str]:
    """Read a two-column CSV ``label,description`` (no header) into a dict."""
    with open(path, newline="") as f:
        return {row[0]: row[1] for row in csv.reader(f) if len(row) >= 2}


def descriptions_for(labels: Iterable[str], table: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    merged = {**MUSIC_DESCRIPTIONS, **(table or {})}
    return {label: describe(label, merged) for label in labels}
