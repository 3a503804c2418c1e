"""Vocabulary data files for `agent.nlu` (payers, symptoms, red flags, places).

Loaded with `importlib.resources`, so they ship inside the package and can be replaced by
passing another file's contents to the loaders in `agent.nlu`.
"""
