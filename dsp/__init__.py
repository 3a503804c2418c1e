"""Digital signal processing in numpy: G.711, resampling, VAD, barge-in, DTMF."""

from dsp.compiled import ensure_current

ensure_current()  # before any compiled module loads: stale extensions must not run
