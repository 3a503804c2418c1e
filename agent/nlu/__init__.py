"""Rule-based understanding of what callers say during intake.

Pure, synchronous functions from ASR-style text (lowercase, no punctuation, number words,
fillers, DTMF digit strings) to typed values. Every extractor returns an
`agent.nlu.result.Extraction` and never raises on any input. One module per field family:

- `numbers`: spoken digits and number words ("double five", "nineteen eighty four").
- `spelling`: letter-by-letter, "s as in sam", NATO alphabet, mixed letters and digits.
- `yesno`: yes / no / "no, it's ..." after a read-back.
- `intents`: repeat, help, go back, operator, goodbye, at any phase.
- `insurance`: payer (fuzzy, from ``agent/data/payers.yaml``), member ID, digit read-back.
- `complaint` and `redflags`: symptoms, duration, severity, category, emergencies.
- `demographics` (with `dates` and `phone`): name, date of birth, phone.
- `address`: street, unit, city, state, ZIP, checked against each other offline.
- `pharmacy`, `emergency_contact`, `scheduling`, `corrections`.

Nothing here reads a clock: `today` / `now` are arguments.
"""
