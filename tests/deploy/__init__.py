"""Tests of the service under a real gunicorn."""
