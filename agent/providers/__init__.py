"""Speech and language providers: embedded (espeak-ng, pocketsphinx, rules) and cloud."""
