"""Serving a trained model: the `Scorer` (scorer.py), its vector cache (draft_vectors.py), the dynamic
batcher (batching.py), the contract serving sees (contract.py) and the MLflow pyfunc (pyfunc.py)."""
