"""openflr: file-level restore from VM replica disk images, behind the Veeam Enterprise Manager REST API."""

__version__ = "0.1.0"
