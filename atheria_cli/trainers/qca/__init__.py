"""atheria's built-in quantum-cellular-automaton trainer (``trainer: atheria/qca``, docs/trainers.md).

:mod:`atheria_cli.trainers.qca.model` holds the networks and the update step a native engine
runs; :mod:`atheria_cli.trainers.qca.trainer` trains them one episode of QCA steps at a time.
"""
