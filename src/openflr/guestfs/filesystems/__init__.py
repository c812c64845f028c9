"""File systems: one module per engine, all behind ``FileSystem`` (see base.py); ``probe`` picks one."""
