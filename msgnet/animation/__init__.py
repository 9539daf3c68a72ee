"""Stylizing clips (GIF, animated WebP/APNG, MP4/WebM/MOV) frame by frame:
:mod:`~msgnet.animation.decode`, :mod:`~msgnet.animation.limits`,
:mod:`~msgnet.animation.stats` (reference statistics against flicker),
:mod:`~msgnet.animation.stylize` (the frame loop), :mod:`~msgnet.animation.encode`,
:mod:`~msgnet.animation.flicker` (the measure) and :mod:`~msgnet.animation.cli`."""
