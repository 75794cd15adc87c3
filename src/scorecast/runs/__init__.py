"""Runs: prepare a recipe's data (prepare), cross-validate or train (cv), write run folders (folder), and ensemble finished runs (ensemble)."""
