"""Reports on committed runs: ``history``, ``status`` and ``compare``.

Silent and torch-free: every module here reads the JSON files of a run (``metadata.json``,
``history.json``, ``episodes.jsonl``) and returns plain dataclasses that ``json.dumps`` takes
after :func:`dataclasses.asdict`. ``atheria history`` must answer at once on runs of thousands
of episodes, so reading a run (:mod:`.runs`) validates only what it shows.
"""
