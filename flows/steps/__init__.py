"""The stateful steps of the graph, one module per step id (the id Bytewax keys their recovery
state by): ``book_1s``, ``radar_1s``, ``session_series``, ``prior_sessions``, ``session_episodes``,
``inference_scores``. Each holds its ``StatefulLogic`` and the state it snapshots; what the steps
send each other is in ``flows.items``.
"""
