"""Restore targets against real servers: file://, Samba (smb://) and OpenSSH (sftp://) on loopback."""
