"""How the embedded default model was made: the story grammar and its corpus, training, prompts.

``vocabulary`` (the grammar's word lists), ``grammar`` (sentence builders and plot shapes),
``corpus`` (stories, corpora and their statistics), ``training`` (a small GPT-Neo trained on
them, deterministically from a seed), ``prompts`` (prompts drawn from the corpus).
"""
