"""Restore targets: where restored items are written (``smb://``, ``sftp://``, ``file://``)."""
