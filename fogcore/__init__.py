"""fogcore: a privacy-preserving fog-compute node built around the Betanet mixnode."""

__version__ = "0.1.0"
__all__ = ["__version__"]
