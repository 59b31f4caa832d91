"""Shared foundations of Sighting: settings, the error tree and image decoding.

Every other package may import from here; `core` imports none of them.
"""
