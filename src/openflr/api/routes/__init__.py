"""Route handlers, one module per EM resource family."""
