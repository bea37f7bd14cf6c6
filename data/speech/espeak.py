"""Training-only augmentation: transcripts spoken by espeak-ng with varied voices, speeds and pitches.

Synthetic speech is far from natural speech, so it only ever joins the training split. Each variant
is a WAV cached under ``cache_dir`` by a hash of (text, voice, speed, pitch): a second run reads them back.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
from pathlib import Path

from recipes.modules.errors import DataError

__all__ = ["ESPEAK_VOICES", "synthesize_variants"]

ESPEAK_VOICES = ("en+f3", "en+f2", "en+f4", "en-us+f3", "en-us+f5", "en+m3", "en-us+m2", "en+m7", "en-gb+f1", "en-us")


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DataError(
            "espeak_augment needs the espeak-ng program", "apt-get install espeak-ng, or set data.espeak_augment: 0"
        )
    return exe


def synthesize_variants(
    texts: list[str], variants: int, cache_dir: str | Path, seed: int = 0
) -> list[tuple[Path, str]]:
    """``variants`` synthesized WAVs for every text, (path, text) pairs, each with a seeded random
    voice, speed (120-190 words a minute) and pitch (30-70)."""
    exe, cache = _espeak(), Path(cache_dir).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    out = []
    for text in texts:
        for _ in range(variants):
            voice, speed, pitch = rng.choice(ESPEAK_VOICES), rng.randint(120, 190), rng.randint(30, 70)
            key = hashlib.sha1(f"{text}|{voice}|{speed}|{pitch}".encode()).hexdigest()[:16]
            path = cache / f"{key}.wav"
            if not path.is_file():
                tmp = path.with_suffix(".tmp.wav")
                try:
                    subprocess.run(
                        [exe, "-w", str(tmp), "-v", voice, "-s", str(speed), "-p", str(pitch), text],
                        check=True,
                        capture_output=True,
                        timeout=60,
                    )
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                    raise DataError(
                        f"espeak-ng failed on {text[:40]!r} ({exc})", "check the espeak-ng installation"
                    ) from None
                tmp.replace(path)  # only complete files enter the cache
            out.append((path, text))
    return out
