"""What the export stage writes besides its tables: the standalone TorchScript scorer (``scorer.py``)."""
