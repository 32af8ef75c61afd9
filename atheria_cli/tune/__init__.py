"""``atheria tune``: a hyperparameter search whose trials are ordinary atheria runs.

One driver process owns an Optuna study through ask/tell (:mod:`.driver`); each trial trains
the base agent entry with the trial's parameters (:mod:`.space`) on every tuning seed, in
segments of ``train.eval.every`` episodes, so the pruner is asked once every seed has
committed an evaluation (:mod:`.trials`). The study lives beside its runs (:mod:`.layout`,
:mod:`.record`, :mod:`.storage`); :mod:`.report` and :mod:`.final` read it back.

Optuna is the optional ``tune`` extra and is imported only here, through :mod:`.extra`.
"""
