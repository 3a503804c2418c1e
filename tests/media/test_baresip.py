"""A real softphone calls the server and hears the greeting intact (issue 3 acceptance).

baresip (Debian package) runs headless: its microphone is a padded silent WAV (``aufile``),
its loudspeaker a null sink (``aubridge``), and the ``sndfile`` module records what it
decodes. The recording is aligned with the greeting the server plays (the same espeak-ng
synthesis, through a μ-law round trip) by cross-correlation, then compared as a whole
(correlation >= 0.9) and frame by frame: a lost, late, repeated or zeroed 20 ms frame would
show as a frame that no longer matches, since everything after a slip is out of alignment.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.signal import correlate

from agent.runtime import GREETING
from dsp.g711 import ulaw_decode, ulaw_encode
from tests.loopback import LOOPBACK, voiceagent_serve

RATE = 8000
FRAME = 160
SETUP_S = 3  # baresip start, INVITE/200/ACK and the tail after the greeting


def baresip_binary() -> str:
    binary = shutil.which("baresip")
    if binary is None:  # the rules: a missing peer fails the test, it never skips it
        pytest.fail("baresip is not installed: apt-get install baresip")
    return binary


def write_wav(path: Path, pcm: NDArray[np.int16]) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm.astype("<i2").tobytes())


def read_wav(path: Path) -> NDArray[np.int16]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


def baresip_config(home: Path, microphone: Path, recordings: Path) -> None:
    """A headless baresip: PCMU only, no registrar, loopback only, records what it hears."""
    home.mkdir()
    (home / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                f"sip_listen {LOOPBACK}:0",
                f"net_interface {LOOPBACK}",
                "audio_player aubridge,nil",
                f"audio_source aufile,{microphone}",
                "audio_alert aubridge,nil",
                f"audio_srate {RATE}",
                "audio_channels 1",
                "module_path /usr/lib/baresip/modules",
                *(
                    f"module {m}.so"
                    for m in ("g711", "aufile", "aubridge", "sndfile", "account", "menu")
                ),
                f"snd_path {recordings}",
                "",
            ]
        )
    )
    (home / "accounts").write_text(f"<sip:tester@{LOOPBACK}>;regint=0;audio_codecs=PCMU\n")


def frame_errors_db(heard: NDArray[np.float64], sent: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per 20 ms frame: error energy relative to the frame's energy, in dB (audible frames)."""
    n = len(sent) // FRAME * FRAME
    h, s = heard[:n].reshape(-1, FRAME), sent[:n].reshape(-1, FRAME)
    energy = (s**2).sum(axis=1)
    audible = energy > FRAME * (32768 * 10 ** (-50 / 20)) ** 2
    error = ((h - s) ** 2).sum(axis=1)
    return 10 * np.log10((error[audible] + 1e-9) / energy[audible])


@pytest.mark.peer
@pytest.mark.slow
def first_synthesis(text: str, tmp_path: Path) -> NDArray[np.int16]:
    """The prompt as a fresh process synthesizes it first, as the server does.

    espeak-ng is not repeatable within a process: a second synthesis of the same text comes
    out a few samples shifted (sample correlation 0.37 between two in a row, measured), so a
    reference made in this process after any other synthesis (another test's) would not
    match the server's first one.
    """
    out = tmp_path / "reference.npy"
    code = (
        "import sys, numpy as np; from agent.prompts import PromptCache; "
        "np.save(sys.argv[2], PromptCache().get(sys.argv[1]))"
    )
    subprocess.run([sys.executable, "-c", code, text, str(out)], check=True, timeout=60)
    return np.load(out)


def test_baresip_hears_the_greeting_intact(tmp_path: Path) -> None:
    began = time.monotonic()
    binary = baresip_binary()
    greeting = ulaw_decode(ulaw_encode(first_synthesis(GREETING, tmp_path))).astype(np.float64)
    call_s = math.ceil(len(greeting) / RATE) + SETUP_S
    microphone = tmp_path / "silence.wav"
    write_wav(microphone, np.zeros(RATE * (call_s + 10), dtype=np.int16))  # padded: EOF hangs up
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    home = tmp_path / "baresip"
    baresip_config(home, microphone, recordings)

    with voiceagent_serve() as server:
        run = subprocess.run(
            [
                binary,
                "-f",
                str(home),
                "-e",
                f"/dial sip:intake@{LOOPBACK}:{server.sip_port}",
                "-t",
                str(call_s),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=call_s + 20,
        )
        output = run.stdout + run.stderr
        assert "Call established" in output, output[-2000:]
        ended = server.wait_for_event("call_ended", timeout=10)
    assert ended[0]["reason"] == "remote_bye"  # baresip hung up at -t, after the greeting

    decoded = sorted(recordings.glob("*-dec.wav"))
    assert len(decoded) == 1, sorted(recordings.iterdir())
    heard = read_wav(decoded[0]).astype(np.float64)
    assert len(heard) >= len(greeting), "the recording is shorter than the greeting"

    lag = int(np.argmax(correlate(heard, greeting, mode="valid", method="fft")))
    aligned = heard[lag : lag + len(greeting)]
    corr = float(np.corrcoef(aligned, greeting)[0, 1])
    errors = frame_errors_db(aligned, greeting)
    frames = aligned[: len(aligned) // FRAME * FRAME].reshape(-1, FRAME)
    sent_frames = greeting[: len(frames) * FRAME].reshape(-1, FRAME)
    zeroed = int(np.sum(~frames.any(axis=1) & sent_frames.any(axis=1)))
    print(
        f"\nbaresip: greeting at {lag / RATE * 1000:.0f} ms into the recording, "
        f"correlation {corr:.6f}, worst audible frame error {errors.max():.1f} dB "
        f"over {len(errors)} frames, zeroed frames {zeroed}; "
        f"{time.monotonic() - began:.1f} s"
    )
    assert lag < 2 * RATE, "the greeting starts as soon as the call is up"
    assert corr >= 0.9
    assert zeroed == 0  # no frame of the greeting arrived as silence
    assert errors.max() <= -20.0  # and none is missing, repeated or shifted
