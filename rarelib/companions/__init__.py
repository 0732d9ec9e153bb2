"""Code of the companion chapters, built on the core workflow.

``exploration`` (rare completions found by the samplers), ``list_decoding`` (the list-decoding
threshold), ``equilearning`` (the law of equi-learning), ``in_context`` and ``toy_training``
(in-context learning of Markov chains, and the small training loops behind it).
"""
