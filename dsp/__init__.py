"""Digital signal processing in numpy: G.711, resampling, VAD, barge-in, DTMF."""
