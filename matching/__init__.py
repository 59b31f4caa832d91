"""Matching: vector index, keypoint verification, score calibration, frame-to-matches pipeline."""
