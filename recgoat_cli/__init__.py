"""recgoat: the RecGOAT multimodal recommender as a command-line pipeline."""

__version__ = "0.1.0"
