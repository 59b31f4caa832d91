"""Whole videos drawn: the ``videos`` job kind (`videos.job`) writes a video's answer (boxes,
item, score, verified) onto its frames as ``annotated.webm``."""
