"""The embedded (offline) providers, built once per process.

pocketsphinx for speech recognition (its wheel ships the en-us model), espeak-ng for speech
(`agent.prompts`), and the rule-based NLU: no keys, no network.
"""

from __future__ import annotations

from agent.providers.base import SpeechToText


def make_embedded_stt() -> SpeechToText:
    """The pocketsphinx recogniser (models load on first use, in worker processes)."""
    from agent.providers.pocketsphinx_stt import PocketsphinxStt

    return PocketsphinxStt()
