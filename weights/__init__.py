"""The registry of model files and the one way to find one: `weights.resolve`."""

from weights.registry import FILES, MODELS, ModelFile, ModelSpec, model_files, resolve, verify

__all__ = ["FILES", "MODELS", "ModelFile", "ModelSpec", "model_files", "resolve", "verify"]
