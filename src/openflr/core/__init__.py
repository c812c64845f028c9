"""Service layer: users, logon sessions, tasks, mounts, restores, audit. Knows no HTTP and no XML."""
