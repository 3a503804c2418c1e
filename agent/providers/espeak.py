"""Embedded text-to-speech: libespeak-ng through ctypes (the espeakng-loader wheel bundles it).

No Debian package and no network: the wheel ships the library and its voice data. espeak-ng
keeps global state, so one process-wide lock serialises synthesis; `synthesize` is blocking
CPU work and async callers run it with `asyncio.to_thread` (see `EspeakTts.speak`).
Output is int16 mono PCM at the library's native rate (22,050 Hz).
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from dataclasses import dataclass

import espeakng_loader
import numpy as np
from numpy.typing import NDArray

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1  # espeak_PARAMETER: espeakRATE
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakError(RuntimeError):
    """libespeak-ng could not be loaded or refused a request."""


@dataclass(frozen=True, slots=True)
class Voice:
    """An espeak-ng voice: a language/variant name and a speaking rate in words per minute."""

    name: str = "en-us"
    rate_wpm: int = 165


class _Library:
    """The loaded library and its one lock (espeak-ng is not thread-safe)."""

    lock = threading.Lock()
    _lib: ctypes.CDLL | None = None
    sample_rate_hz = 22050

    @classmethod
    def get(cls) -> ctypes.CDLL:
        if cls._lib is None:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            lib.espeak_Initialize.restype = ctypes.c_int
            lib.espeak_Initialize.argtypes = [
                ctypes.c_int,
                ctypes.c_int,
                ctypes.c_char_p,
                ctypes.c_int,
            ]
            data = espeakng_loader.get_data_path().encode()
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
            if rate <= 0:
                raise EspeakError("libespeak-ng failed to initialise")
            cls.sample_rate_hz = rate
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
            lib.espeak_Synth.argtypes = [
                ctypes.c_void_p,
                ctypes.c_size_t,
                ctypes.c_uint,
                ctypes.c_int,
                ctypes.c_uint,
                ctypes.c_uint,
                ctypes.c_void_p,
                ctypes.c_void_p,
            ]
            lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
            cls._lib = lib
        return cls._lib


def synthesize(text: str, voice: Voice | None = None) -> NDArray[np.int16]:
    """Speak ``text`` with ``voice``; int16 PCM at `sample_rate_hz()`.

    Raises:
        EspeakError: the library refused the voice or the text.
    """
    voice = voice or Voice()
    chunks: list[NDArray[np.int16]] = []

    def on_audio(wav: ctypes._Pointer[ctypes.c_short], count: int, events: int | None) -> int:
        if count > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).astype(np.int16, copy=True))
        return 0  # 0 = continue

    callback = _SYNTH_CALLBACK(on_audio)
    encoded = text.encode("utf-8") + b"\0"
    with _Library.lock:
        lib = _Library.get()
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise EspeakError(f"espeak-ng has no voice {voice.name!r}")
        lib.espeak_SetParameter(_ESPEAK_RATE, voice.rate_wpm, 0)
        status = lib.espeak_Synth(encoded, len(encoded), 0, 0, 0, _ESPEAK_CHARS_UTF8, None, None)
        if status != 0:
            raise EspeakError(f"espeak-ng synthesis failed with status {status}")
    if not chunks:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(chunks)


def sample_rate_hz() -> int:
    """The library's output rate (22,050 Hz for espeak-ng)."""
    _Library.get()
    return _Library.sample_rate_hz


class EspeakTts:
    """Async face of `synthesize` for the agent runtime."""

    def __init__(self, voice: Voice | None = None) -> None:
        self.voice = voice or Voice()

    async def speak(self, text: str) -> NDArray[np.int16]:
        """Synthesize off the event loop."""
        return await asyncio.to_thread(synthesize, text, self.voice)
