"""Getting items out of a mounted point: file and ZIP streams, restores to the guest's own location."""
