"""Image format readers: each turns one image file into a ``Layer`` (see ``guestfs/blocks.py``)."""
