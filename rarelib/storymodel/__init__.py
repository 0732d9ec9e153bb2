"""How the embedded default model was made: the story grammar and its corpus, training, prompts.

``corpus`` (the story grammar that writes the training corpus), ``training`` (a small GPT-Neo
trained on it, deterministically from a seed), ``prompts`` (prompts drawn from the corpus).
"""
