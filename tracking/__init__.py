"""Live video: per-stream tracking with cached verification, stream registry, video files."""
