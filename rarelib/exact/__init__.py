"""Exact answers: models whose rare-event probabilities are computable, and checks against them.

``solvable`` (Markov-chain LMs: exact tilted partition functions and tails by transfer matrices
and dynamic programming), ``chains`` (a windowed transformer read as a Markov chain on its
contexts), ``validation`` (the library's estimators run on solvable models and compared with
the exact answers).
"""
